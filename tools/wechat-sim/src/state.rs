//! The simulator's world: users, codes, tokens, faults, clock, counters.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use rand::RngCore;
use serde::Serialize;
use serde_json::Value;

use crate::push::PushRecord;
use crate::SimConfig;

pub const CODE_TTL_S: i64 = 300;
pub const TOKEN_TTL_S: i64 = 7200;
/// After a classic fetch the previous token keeps working this long.
pub const OVERLAP_S: i64 = 300;
/// stable_token renews this long before expiry (old and new both valid).
pub const STABLE_RENEW_S: i64 = 300;
pub const LOGIN_QUOTA_PER_MINUTE: usize = 100;
pub const FORCE_REFRESH_PER_DAY: usize = 20;
pub const FORCE_REFRESH_GAP_S: i64 = 30;

#[derive(Debug, Clone, Serialize)]
pub struct InboxMessage {
    pub msgid: String,
    pub template_id: String,
    pub page: Option<String>,
    pub data: Value,
    pub miniprogram_state: String,
    pub lang: String,
    pub received_at: i64,
}

#[derive(Debug, Default)]
pub struct User {
    pub unionid: Option<String>,
    pub blocked: bool,
    pub credits: BTreeMap<String, u32>,
    pub long_term: BTreeMap<String, bool>,
    pub inbox: Vec<InboxMessage>,
    pub logins: VecDeque<i64>,
}

pub struct Code {
    pub openid: String,
    pub issued_at: i64,
    pub used: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct TokenInfo {
    pub expires_at: i64,
    /// Earlier than `expires_at` when a newer fetch invalidated it.
    pub valid_until: i64,
}

#[derive(Debug, Clone, Serialize)]
pub enum FaultKind {
    Errcode { errcode: i64, errmsg: String },
    HttpStatus(u16),
    Delay(u64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub path: String,
    pub remaining: u32,
    pub kind: FaultKind,
}

pub struct State {
    pub config: SimConfig,
    pub clock_offset_s: i64,
    pub users: HashMap<String, User>,
    pub codes: HashMap<String, Code>,
    pub tokens: HashMap<String, TokenInfo>,
    pub classic_current: Option<String>,
    pub stable_current: Option<String>,
    pub force_refreshes: Vec<i64>,
    pub faults: Vec<Fault>,
    pub stats: BTreeMap<String, u64>,
    pub next_msgid: u64,
    pub pushes: Vec<PushRecord>,
}

pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl State {
    pub fn new(config: SimConfig) -> Self {
        State {
            config,
            clock_offset_s: 0,
            users: HashMap::new(),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            classic_current: None,
            stable_current: None,
            force_refreshes: Vec::new(),
            faults: Vec::new(),
            stats: BTreeMap::new(),
            // WeChat's msgids are large 64-bit numbers.
            next_msgid: 3_248_682_510_344_192_008,
            pushes: Vec::new(),
        }
    }

    pub fn now(&self) -> i64 {
        let real = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        real + self.clock_offset_s
    }

    /// Takes the next fault for `path`, if any is armed.
    pub fn take_fault(&mut self, path: &str) -> Option<FaultKind> {
        let idx = self.faults.iter().position(|f| f.path == path && f.remaining > 0)?;
        let f = &mut self.faults[idx];
        f.remaining -= 1;
        let kind = f.kind.clone();
        if f.remaining == 0 {
            self.faults.remove(idx);
        }
        Some(kind)
    }

    pub fn count(&mut self, path: &str) {
        *self.stats.entry(path.to_string()).or_default() += 1;
    }

    pub fn issue_token(&mut self) -> (String, i64) {
        let token = format!("SIM_{}", random_hex(24));
        let now = self.now();
        self.tokens.insert(token.clone(), TokenInfo { expires_at: now + TOKEN_TTL_S, valid_until: now + TOKEN_TTL_S });
        (token, now + TOKEN_TTL_S)
    }

    /// `None` when valid, else WeChat's errcode and errmsg.
    pub fn check_token(&self, token: Option<&str>) -> Option<(i64, &'static str)> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Some((41001, "access_token missing"));
        };
        let now = self.now();
        match self.tokens.get(token) {
            None => Some((40001, "invalid credential, access_token is invalid or not latest")),
            Some(t) if now >= t.expires_at => Some((42001, "access_token expired")),
            Some(t) if now >= t.valid_until => {
                Some((40001, "invalid credential, access_token is invalid or not latest"))
            }
            Some(_) => None,
        }
    }

    pub fn invalidate(&mut self, token: &str, at: i64) {
        if let Some(t) = self.tokens.get_mut(token) {
            t.valid_until = t.valid_until.min(at);
        }
    }
}
