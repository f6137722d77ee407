//! WeChat's keyword rules for subscription-message data, one table row per
//! keyword type. The type is the key without its trailing index
//! (`thing1` -> thing, `character_string03` -> character_string).
//! WeChat rejects a breaking value with 47003 and never truncates, so we check
//! everything before a message is stored.

use std::sync::LazyLock;

use regex::Regex;

use std::collections::BTreeMap;

use super::message::{DataValue, MessageData};
use super::template::TemplateDef;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("data.{key}: {rule}")]
pub struct RuleViolation {
    pub key: String,
    pub rule: String,
}

struct Rule {
    kind: &'static str,
    rule: &'static str,
    check: fn(&str) -> bool,
}

/// The table. `enum` is checked against the template's own list, below.
const RULES: &[Rule] = &[
    Rule { kind: "thing", rule: "thing: at most 20 characters", check: thing },
    Rule { kind: "number", rule: "number: at most 32 digits, optionally with a decimal point", check: number },
    Rule { kind: "letter", rule: "letter: at most 32 letters", check: letter },
    Rule { kind: "symbol", rule: "symbol: at most 5 symbols", check: symbol },
    Rule { kind: "character_string", rule: "character_string: at most 32 digits, letters or symbols", check: character_string },
    Rule { kind: "time", rule: "time: 24-hour time such as 15:01 or 15:01:30, optionally after a date; a range joins two with ~", check: time },
    Rule { kind: "date", rule: "date: such as 2019年10月1日, 2019-10-01, 2019/10/01, 10月1日, optionally with a time; a range joins two with ~", check: date },
    Rule { kind: "amount", rule: "amount: one currency symbol, at most 10 digits, optional decimals, optional trailing 元", check: amount },
    Rule { kind: "phone_number", rule: "phone_number: at most 17 digits and symbols", check: phone_number },
    Rule { kind: "car_number", rule: "car_number: at most 8 characters; first and last may be Chinese, the rest letters or digits", check: car_number },
    Rule { kind: "name", rule: "name: at most 10 Chinese characters, or at most 20 letters or symbols", check: name },
    Rule { kind: "phrase", rule: "phrase: at most 5 Chinese characters", check: phrase },
];

fn re(pattern: &str) -> Regex {
    // The patterns are compile-time constants covered by the tests below.
    Regex::new(pattern).unwrap_or_else(|e| panic!("bad keyword pattern {pattern}: {e}"))
}

static NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"^-?[0-9]+(\.[0-9]+)?$"));
static LETTER: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z]{1,32}$"));
static SYMBOL: LazyLock<Regex> = LazyLock::new(|| re(r"^[\p{P}\p{S}]{1,5}$"));
static CHARACTER_STRING: LazyLock<Regex> = LazyLock::new(|| re(r"^[\x21-\x7E]{1,32}$"));
static CLOCK: LazyLock<Regex> = LazyLock::new(|| re(r"^([01]?[0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"));
static DATE_FORMS: LazyLock<[Regex; 6]> = LazyLock::new(|| {
    [
        re(r"^(?P<y>[0-9]{4})年(?P<m>[0-9]{1,2})月(?P<d>[0-9]{1,2})日$"),
        re(r"^(?P<y>[0-9]{4})年(?P<m>[0-9]{1,2})月$"),
        re(r"^(?P<m>[0-9]{1,2})月(?P<d>[0-9]{1,2})日$"),
        re(r"^(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})$"),
        re(r"^(?P<y>[0-9]{4})[-/.](?P<m>[0-9]{1,2})$"),
        re(r"^(?P<m>[0-9]{1,2})[-/.](?P<d>[0-9]{1,2})$"),
    ]
});
static AMOUNT: LazyLock<Regex> = LazyLock::new(|| re(r"^[¥￥$€£]?[0-9]{1,10}(\.[0-9]{1,2})?元?$"));
static CAR_NUMBER: LazyLock<Regex> = LazyLock::new(|| re(r"^\p{Han}?[A-Za-z0-9]+\p{Han}?$"));
static NAME_LATIN: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z \p{P}\p{S}]{1,20}$"));
static NAME_CHINESE: LazyLock<Regex> = LazyLock::new(|| re(r"^[\p{Han}A-Za-z \p{P}\p{S}]{1,10}$"));
static HAN: LazyLock<Regex> = LazyLock::new(|| re(r"\p{Han}"));
static PHRASE: LazyLock<Regex> = LazyLock::new(|| re(r"^\p{Han}{1,5}$"));

fn chars(v: &str) -> usize {
    v.chars().count()
}

fn thing(v: &str) -> bool {
    chars(v) <= 20
}

fn number(v: &str) -> bool {
    NUMBER.is_match(v) && v.bytes().filter(u8::is_ascii_digit).count() <= 32
}

fn letter(v: &str) -> bool {
    LETTER.is_match(v)
}

fn symbol(v: &str) -> bool {
    SYMBOL.is_match(v)
}

fn character_string(v: &str) -> bool {
    CHARACTER_STRING.is_match(v)
}

fn calendar_date(v: &str) -> bool {
    DATE_FORMS.iter().any(|form| {
        form.captures(v).is_some_and(|c| {
            let in_range = |name: &str, lo: u32, hi: u32| {
                c.name(name).is_none_or(|m| m.as_str().parse::<u32>().is_ok_and(|n| (lo..=hi).contains(&n)))
            };
            in_range("m", 1, 12) && in_range("d", 1, 31)
        })
    })
}

/// `<date>` or `<date> <time>`.
fn date_point(v: &str) -> bool {
    let v = v.trim();
    if calendar_date(v) {
        return true;
    }
    match v.rsplit_once(' ') {
        Some((d, t)) => calendar_date(d.trim()) && CLOCK.is_match(t.trim()),
        None => false,
    }
}

/// `<time>` or `<date> <time>`.
fn time_point(v: &str) -> bool {
    let v = v.trim();
    if CLOCK.is_match(v) {
        return true;
    }
    // `2019年10月1日15:01` (no space) is as common as the spaced form.
    if let Some(pos) = v.find('日') {
        let (d, t) = v.split_at(pos + '日'.len_utf8());
        if calendar_date(d) && CLOCK.is_match(t.trim()) {
            return true;
        }
    }
    match v.rsplit_once(' ') {
        Some((d, t)) => calendar_date(d.trim()) && CLOCK.is_match(t.trim()),
        None => false,
    }
}

fn range_of(v: &str, point: fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = v.split('~').collect();
    parts.len() <= 2 && parts.iter().all(|p| point(p))
}

fn time(v: &str) -> bool {
    range_of(v, time_point)
}

fn date(v: &str) -> bool {
    range_of(v, date_point)
}

fn amount(v: &str) -> bool {
    AMOUNT.is_match(v)
}

fn phone_number(v: &str) -> bool {
    chars(v) <= 17
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_digit() || c.is_ascii_punctuation() || c == ' ')
}

fn car_number(v: &str) -> bool {
    chars(v) <= 8 && chars(v) >= 2 && CAR_NUMBER.is_match(v)
}

fn name(v: &str) -> bool {
    if HAN.is_match(v) {
        NAME_CHINESE.is_match(v)
    } else {
        NAME_LATIN.is_match(v)
    }
}

fn phrase(v: &str) -> bool {
    PHRASE.is_match(v)
}

/// The keyword type of a key: `thing12` -> `thing`. `None` when the key has
/// no index or is not of the `type<digits>` shape.
pub fn keyword_type(key: &str) -> Option<&str> {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    let valid = !kind.is_empty() && kind.len() < key.len() && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    valid.then_some(kind)
}

/// Checks one value against its key's rule (and the template's enum list).
pub fn check(key: &str, value: &str, template: &TemplateDef) -> Result<(), RuleViolation> {
    let violation = |rule: String| RuleViolation { key: key.to_string(), rule };
    let kind = keyword_type(key)
        .ok_or_else(|| violation("the key must be a keyword type and index, such as thing1".into()))?;
    if value.is_empty() {
        return Err(violation("must not be empty".into()));
    }
    if value.chars().any(char::is_control) {
        return Err(violation("must not contain control characters (newlines included)".into()));
    }
    if kind == "enum" {
        return match template.enums.get(key) {
            Some(allowed) if allowed.iter().any(|a| a == value) => Ok(()),
            Some(allowed) => Err(violation(format!("enum: must be one of {}", allowed.join(", ")))),
            None => Err(violation("enum: no values are configured for this key in TEMPLATES".into())),
        };
    }
    let rule =
        RULES.iter().find(|r| r.kind == kind).ok_or_else(|| violation(format!("unknown keyword type '{kind}'")))?;
    if (rule.check)(value) {
        Ok(())
    } else {
        Err(violation(rule.rule.to_string()))
    }
}

/// Checks every value of a message against its keyword's rule: the data
/// WeChat will accept, or the first value it would refuse.
pub fn check_all(data: &BTreeMap<String, String>, template: &TemplateDef) -> Result<MessageData, RuleViolation> {
    data.iter()
        .map(|(key, value)| check(key, value, template).map(|()| (key.clone(), DataValue { value: value.clone() })))
        .collect()
}

#[cfg(test)]
mod tests;
