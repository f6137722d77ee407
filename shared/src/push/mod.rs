//! WeChat message push (消息推送): signatures and AES safe-mode crypto
//! ([`crypto`]), opening a push request ([`open`]), and the event formats,
//! JSON and XML ([`event`], [`xml`]).

pub mod crypto;
pub mod event;
pub mod open;
pub mod xml;
