//! The keyword rules' table, row by row: an accept and a reject case each.
//! Compiled only for tests: keywords.rs declares it as `#[cfg(test)] mod tests;`.

use std::collections::HashMap;

use super::*;
use crate::domain::{TemplateId, TemplateKind};

fn template() -> TemplateDef {
    let mut enums = HashMap::new();
    enums.insert("enum2".to_string(), vec!["待支付".to_string(), "已支付".to_string()]);
    TemplateDef { id: TemplateId::parse("T").expect("id"), kind: TemplateKind::OneTime, enums }
}

/// (key, value, accepted?) — at least one accept and one reject per row of the table.
const CASES: &[(&str, &str, bool)] = &[
    ("thing1", "项目评审会", true),
    ("thing1", "二十个字以内的会议名称可以的吧好的好的好", true),
    ("thing1", "这是一个超过二十个字的会议名称会被微信拒绝的呀", false),
    ("thing1", "", false),
    ("thing1", "第一行\n第二行", false),
    ("number01", "12345", true),
    ("number01", "3.1415", true),
    ("number01", "123456789012345678901234567890123", false),
    ("number01", "12a", false),
    ("letter2", "abcXYZ", true),
    ("letter2", "abc1", false),
    ("letter2", "abcdefghijklmnopqrstuvwxyzabcdefg", false),
    ("symbol3", "%$#", true),
    ("symbol3", "!!!!!!", false),
    ("symbol3", "a!", false),
    ("character_string4", "SN-2026_0001", true),
    ("character_string4", "订单123", false),
    ("character_string4", "abcdefghijklmnopqrstuvwxyz01234567", false),
    ("time5", "15:01", true),
    ("time5", "15:01:30", true),
    ("time5", "2019年10月1日 15:01", true),
    ("time5", "2026-11-24 14:00", true),
    ("time5", "14:00~15:30", true),
    ("time5", "25:00", false),
    ("time5", "3pm", false),
    ("date6", "2019年10月1日", true),
    ("date6", "2019年10月", true),
    ("date6", "10月1日", true),
    ("date6", "2019-10-01", true),
    ("date6", "2019/10/01", true),
    ("date6", "2019.10.01", true),
    ("date6", "2019-10", true),
    ("date6", "10-01", true),
    ("date6", "2019-10-01 15:01", true),
    ("date6", "2019-10-01~2019-10-07", true),
    ("date6", "2019-13-01", false),
    ("date6", "yesterday", false),
    ("date6", "2019-10-01~2019-10-07~2019-10-09", false),
    ("amount7", "¥100.00", true),
    ("amount7", "100元", true),
    ("amount7", "$12", true),
    ("amount7", "¥12345678901", false),
    ("amount7", "¥¥1", false),
    ("phone_number8", "+86-0766-66888866", true),
    ("phone_number8", "13800138000", true),
    ("phone_number8", "+86-0766-668888661", false),
    ("phone_number8", "call me", false),
    ("car_number9", "粤A8Z888挂", true),
    ("car_number9", "京A12345", true),
    ("car_number9", "粤A8Z8888挂", false),
    ("car_number9", "粤-A8Z88", false),
    ("name10", "张三", true),
    ("name10", "Li Lei", true),
    ("name10", "欧阳诸葛司马上官长名字", false),
    ("name10", "Bob2", false),
    ("phrase11", "已发货", true),
    ("phrase11", "已经全部发货了", false),
    ("phrase11", "done", false),
    ("enum2", "已支付", true),
    ("enum2", "已退款", false),
    ("enum3", "已支付", false),
    ("foo1", "x", false),
    ("thing", "x", false),
];

#[test]
fn every_row_accepts_and_rejects() {
    let t = template();
    for (key, value, ok) in CASES {
        let got = check(key, value, &t);
        assert_eq!(got.is_ok(), *ok, "{key}={value:?}: {got:?}");
        if let Err(v) = got {
            assert_eq!(v.key, *key);
            assert!(!v.rule.is_empty());
        }
    }
}

#[test]
fn every_rule_row_has_cases_both_ways() {
    for rule in RULES.iter().map(|r| r.kind).chain(["enum"]) {
        let of_kind = |want: bool| CASES.iter().any(|(k, _, ok)| keyword_type(k) == Some(rule) && *ok == want);
        assert!(of_kind(true) && of_kind(false), "rule {rule} lacks an accept or a reject case");
    }
}

#[test]
fn keyword_type_strips_index() {
    assert_eq!(keyword_type("character_string03"), Some("character_string"));
    assert_eq!(keyword_type("thing1"), Some("thing"));
    assert_eq!(keyword_type("thing"), None);
    assert_eq!(keyword_type("1"), None);
    assert_eq!(keyword_type("Thing1"), None);
}

#[test]
fn violation_names_key_and_rule() {
    let e = check("thing1", &"长".repeat(21), &template()).expect_err("too long");
    assert_eq!(e.to_string(), "data.thing1: thing: at most 20 characters");
}
