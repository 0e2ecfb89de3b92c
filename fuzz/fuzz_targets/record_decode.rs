//! Decoding of stored records and events from arbitrary bytes: corrupt
//! storage is an error, never a panic, and whatever decodes re-encodes to
//! bytes that decode to the same value.
#![no_main]

use apikeys::{Event, KeyRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = KeyRecord::decode(data) {
        let encoded = record.encode();
        let again = KeyRecord::decode(&encoded).expect("an encoded record decodes");
        assert_eq!(again, record);
        assert_eq!(again.encode(), encoded, "encoding is not stable");
    }
    if let Ok(event) = Event::decode(data) {
        let encoded = event.encode();
        let again = Event::decode(&encoded).expect("an encoded event decodes");
        assert_eq!(again, event);
        assert_eq!(again.encode(), encoded, "encoding is not stable");
    }
    // A valid encoding with a wrong version byte, or cut short, is refused.
    if let Some((_, body)) = data.split_first() {
        let mut wrong_version = vec![0xEE];
        wrong_version.extend_from_slice(body);
        assert!(KeyRecord::decode(&wrong_version).is_err());
        assert!(Event::decode(&wrong_version).is_err());
    }
});
