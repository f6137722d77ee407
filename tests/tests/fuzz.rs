//! Property tests of the push decrypt-and-parse path: arbitrary input never
//! panics, and encryption round-trips with random keys.

use base64::Engine;
use proptest::prelude::*;
use shared::push::crypto::PushCipher;
use shared::push::event::{parse_document, Push};

fn key_from(bytes: [u8; 32]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    b64.trim_end_matches('=').to_string()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn decrypt_never_panics(input in ".{0,400}", raw in proptest::collection::vec(any::<u8>(), 0..300)) {
        let cipher = PushCipher::new("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG").expect("key");
        let _ = cipher.decrypt(&input);
        let _ = cipher.decrypt(&base64::engine::general_purpose::STANDARD.encode(&raw));
    }

    #[test]
    fn parse_never_panics(input in ".{0,400}") {
        if let Ok(doc) = parse_document(&input) {
            let _ = Push::from_document(&doc);
        }
        let xml = format!("<xml>{input}</xml>");
        if let Ok(doc) = parse_document(&xml) {
            let _ = Push::from_document(&doc);
        }
    }

    #[test]
    fn round_trips_with_random_keys(key in any::<[u8; 32]>(), msg in ".{0,300}", appid in "wx[0-9a-f]{16}") {
        let cipher = PushCipher::new(&key_from(key)).expect("43-char key");
        let (back, got_appid) = cipher.decrypt(&cipher.encrypt(&msg, &appid)).expect("round trip");
        prop_assert_eq!(back, msg);
        prop_assert_eq!(got_appid, appid);
    }
}
