//! Signatures and AES safe-mode crypto of WeChat message push.
//!
//! AES-256-CBC with the key's first 16 bytes as IV, PKCS#7 padding to a
//! multiple of 32 bytes (so a pad byte may be up to 32). Plaintext layout:
//! 16 random bytes, 4-byte big-endian length, message, appid.

use aes::Aes256;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use rand::RngCore;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

const PAD_BLOCK: usize = 32;

/// Standard alphabet, lenient about padding and trailing bits: an
/// EncodingAESKey's last character carries bits beyond the 32 key bytes.
const LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    #[error("EncodingAESKey must be 43 base64 characters")]
    BadKey,
    #[error("ciphertext is not valid base64")]
    BadBase64,
    #[error("ciphertext length is not a whole number of AES blocks")]
    BadLength,
    #[error("padding is invalid")]
    BadPadding,
    #[error("the length prefix does not fit the plaintext")]
    BadLengthPrefix,
    #[error("the message is not UTF-8")]
    NotUtf8,
}

/// SHA-1 hex of the sorted concatenation of `parts` (token, timestamp, nonce[, Encrypt]).
pub fn signature(parts: &[&str]) -> String {
    let mut sorted: Vec<&str> = parts.to_vec();
    sorted.sort_unstable();
    let mut h = Sha1::new();
    for p in sorted {
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Constant-time check of a hex signature against the expected one.
pub fn verify(given: &str, parts: &[&str]) -> bool {
    let expected = signature(parts);
    let given = given.trim().to_ascii_lowercase();
    given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

#[derive(Clone)]
pub struct PushCipher {
    key: [u8; 32],
}

impl std::fmt::Debug for PushCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PushCipher(<redacted>)")
    }
}

impl PushCipher {
    pub fn new(encoding_aes_key: &str) -> Result<Self, CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        let bytes = LENIENT.decode(format!("{encoding_aes_key}=")).map_err(|_| CryptoError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(PushCipher { key })
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// Decrypts `Encrypt` into `(message, appid)`.
    pub fn decrypt(&self, encrypted_b64: &str) -> Result<(String, String), CryptoError> {
        let mut buf = LENIENT.decode(encrypted_b64.trim()).map_err(|_| CryptoError::BadBase64)?;
        if buf.is_empty() || buf.len() % 16 != 0 {
            return Err(CryptoError::BadLength);
        }
        let dec = cbc::Decryptor::<Aes256>::new(&self.key.into(), &self.iv().into());
        let plain = dec.decrypt_padded_mut::<NoPadding>(&mut buf).map_err(|_| CryptoError::BadPadding)?;
        let pad = *plain.last().ok_or(CryptoError::BadPadding)? as usize;
        if pad == 0
            || pad > PAD_BLOCK
            || pad > plain.len()
            || !plain[plain.len() - pad..].iter().all(|&b| b as usize == pad)
        {
            return Err(CryptoError::BadPadding);
        }
        let body = &plain[..plain.len() - pad];
        if body.len() < 20 {
            return Err(CryptoError::BadLengthPrefix);
        }
        let len = u32::from_be_bytes([body[16], body[17], body[18], body[19]]) as usize;
        let rest = &body[20..];
        if len > rest.len() {
            return Err(CryptoError::BadLengthPrefix);
        }
        let msg = std::str::from_utf8(&rest[..len]).map_err(|_| CryptoError::NotUtf8)?;
        let appid = std::str::from_utf8(&rest[len..]).map_err(|_| CryptoError::NotUtf8)?;
        Ok((msg.to_string(), appid.to_string()))
    }

    /// Encrypts as WeChat does (used by the tests and the simulator's peers).
    pub fn encrypt(&self, msg: &str, appid: &str) -> String {
        let mut random = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut random);
        self.encrypt_with(random, msg, appid)
    }

    pub fn encrypt_with(&self, random: [u8; 16], msg: &str, appid: &str) -> String {
        let mut plain = Vec::with_capacity(20 + msg.len() + appid.len() + PAD_BLOCK);
        plain.extend_from_slice(&random);
        plain.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        plain.extend_from_slice(msg.as_bytes());
        plain.extend_from_slice(appid.as_bytes());
        let pad = PAD_BLOCK - plain.len() % PAD_BLOCK;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let len = plain.len();
        let enc = cbc::Encryptor::<Aes256>::new(&self.key.into(), &self.iv().into());
        // `plain` is already a whole number of blocks, so NoPadding cannot fail.
        let out = enc.encrypt_padded_mut::<NoPadding>(&mut plain, len).map(|c| c.to_vec()).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFICIAL_ENCRYPT: &str = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=";
    const WECHATPY_ENCRYPT: &str = "RgqEoJj5A4EMYlLvWO1F86ioRjZfaex/gePD0gOXTxpsq5Yj4GNglrBb8I2BAJVODGajiFnXBu7mCPatfjsu6IHCrsTyeDXzF6Bv283dGymzxh6ydJRvZsryDyZbLTE7rhnus50qGPMfp2wASFlzEgMW9z1ef/RD8XzaFYgm7iTdaXpXaG4+BiYyolBug/gYNx410cvkKR2/nPwBiT+P4hIiOAQqGp/TywZBtDh1yCF2KOd0gpiMZ5jSw3e29mTvmUHzkVQiMS6td7vXUaWOMZnYZlF3So2SjHnwh4jYFxdgpkHHqIrH/54SNdshoQgWYEvccTKe7FS709/5t6NMxuGhcUGAPOQipvWTT4dShyqio7mlsl5noTrb++x6En749zCpQVhDpbV6GDnTbcX2e8K9QaNWHp91eBdCRxthuL0=";

    #[test]
    fn official_sample_known_answer() {
        assert!(verify(
            "5d197aaffba7e9b25a30732f161a50dee96bd5fa",
            &["spamtest", "1409735669", "1320562132", OFFICIAL_ENCRYPT]
        ));
        let c = PushCipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
        let (msg, appid) = c.decrypt(OFFICIAL_ENCRYPT).expect("decrypts");
        assert_eq!(appid, "wx2c2769f8efd9abc2");
        assert!(msg.contains("<Content><![CDATA[abcdteT]]></Content>"), "{msg}");
        assert!(msg.contains("<MsgId>6054768590064713728</MsgId>"), "{msg}");
    }

    #[test]
    fn wechatpy_known_answer() {
        assert!(verify(
            "74d92dfeb87ba7c714f89d98870ae5eb62dff26d",
            &["123456", "1411525903", "461056294", WECHATPY_ENCRYPT]
        ));
        let c = PushCipher::new("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR").expect("key");
        let (msg, appid) = c.decrypt(WECHATPY_ENCRYPT).expect("decrypts");
        assert_eq!(appid, "wx49f0ab532d5d035a");
        assert!(msg.contains("messense") && msg.contains("<Content><![CDATA[test]]></Content>"), "{msg}");
    }

    #[test]
    fn signature_is_order_independent_and_checked_exactly() {
        assert_eq!(signature(&["b", "a", "c"]), signature(&["c", "b", "a"]));
        let good = signature(&["t", "1", "n"]);
        assert!(verify(&good, &["t", "1", "n"]));
        assert!(verify(&good.to_uppercase(), &["t", "1", "n"]));
        assert!(!verify(&good[..39], &["t", "1", "n"]));
        assert!(!verify(&good, &["t", "2", "n"]));
    }

    #[test]
    fn rejects_tampering() {
        let c = PushCipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
        assert_eq!(c.decrypt("not base64!!").unwrap_err(), CryptoError::BadBase64);
        assert_eq!(c.decrypt("AAAA").unwrap_err(), CryptoError::BadLength);
        let mut raw = base64::engine::general_purpose::STANDARD.decode(OFFICIAL_ENCRYPT).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 0x55;
        let tampered = base64::engine::general_purpose::STANDARD.encode(&raw);
        assert!(c.decrypt(&tampered).is_err());
        assert!(PushCipher::new("short").is_err());
    }

    #[test]
    fn length_prefix_beyond_plaintext_is_refused() {
        let c = PushCipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
        // Build a plaintext whose declared length is larger than what follows.
        let mut plain = vec![0u8; 16];
        plain.extend_from_slice(&1000u32.to_be_bytes());
        plain.extend_from_slice(b"short");
        let pad = 32 - plain.len() % 32;
        plain.extend(std::iter::repeat_n(pad as u8, pad));
        let len = plain.len();
        let enc = cbc::Encryptor::<Aes256>::new(&c.key.into(), &c.iv().into());
        let ct = enc.encrypt_padded_mut::<NoPadding>(&mut plain, len).expect("blocks").to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(ct);
        assert_eq!(c.decrypt(&b64).unwrap_err(), CryptoError::BadLengthPrefix);
    }

    #[test]
    fn padding_up_to_32_round_trips() {
        let c = PushCipher::new("kWxPEV2UEDyxWpmPdKC3F4dgPDmOvfKX1HGnEUDS1aR").expect("key");
        for len in 0..70 {
            let msg = "x".repeat(len);
            let (back, appid) = c.decrypt(&c.encrypt(&msg, "wxappid")).expect("round trip");
            assert_eq!((back.as_str(), appid.as_str()), (msg.as_str(), "wxappid"));
        }
    }
}
