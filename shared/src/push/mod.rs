//! WeChat message push (消息推送): signatures, safe-mode crypto, and the
//! event formats (JSON and XML).

pub mod crypto;
pub mod event;
pub mod xml;
