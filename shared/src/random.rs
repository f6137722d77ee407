//! Random identifiers and tokens (OS randomness via `rand`'s CSPRNG).

use base64::Engine;
use rand::RngCore;

use crate::domain::MessageId;

/// 256 random bits, URL-safe base64 without padding: the bearer session token.
pub fn session_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A new message id: 128 random bits.
pub fn message_id() -> MessageId {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    MessageId::from_random(bytes)
}

/// An owner tag for leases (one per process), so a lease names who holds it.
pub fn owner_tag() -> String {
    let mut bytes = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new broadcast id: 128 random bits.
pub fn broadcast_id() -> crate::domain::BroadcastId {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    crate::domain::BroadcastId::from_random(bytes)
}
