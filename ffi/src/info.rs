//! The read-only structs C reads (`apikeys_key_info`,
//! `apikeys_verified_info`) and the owned strings behind their pointers.

use core::ffi::c_char;
use core::ptr;
use std::ffi::CString;

use apikeys_core::{KeyInfo, Status, Timestamp, VerifiedKey};

use crate::boundary::c_string;
use crate::status::apikeys_key_status;

/// Everything known about a key, as generated or listed. A read-only view:
/// its strings belong to the handle it came from (`apikeys_key` or
/// `apikeys_list`) and stay valid until that handle is freed.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct apikeys_key_info {
    /// Public id (16 characters). NUL-terminated UTF-8, like every string here.
    pub id: *const c_char,
    /// Human name.
    pub name: *const c_char,
    /// Display hint: prefix and first four body characters, such as "flz_sk_prod_Ab3x…".
    pub hint: *const c_char,
    /// Environment tag; NULL if none.
    pub env: *const c_char,
    /// Granted scopes, space-separated; "" if none.
    pub scopes: *const c_char,
    /// Owner; NULL if none.
    pub owner: *const c_char,
    /// Id of the key this one replaced by rotation; NULL if none.
    pub rotated_from: *const c_char,
    /// Id of the key that replaced this one by rotation; NULL if none.
    pub rotated_to: *const c_char,
    /// Creation time, Unix seconds UTC.
    pub created_at: i64,
    /// Expiry, Unix seconds UTC; 0 = never.
    pub expires_at: i64,
    /// Revocation time, Unix seconds UTC; 0 = not revoked.
    pub revoked_at: i64,
    /// Last accepted use, Unix seconds UTC; 0 = never.
    pub last_used: i64,
    /// Accepted uses.
    pub use_count: u64,
    /// Presentations after revocation or expiry (suspicious uses).
    pub rejected_count: u64,
    /// `APIKEYS_KEY_ACTIVE` (0), `APIKEYS_KEY_REVOKED` (1) or `APIKEYS_KEY_EXPIRED` (2),
    /// when the information was read.
    pub status: u32,
    /// The key store an imported key came from: "sanctum", "drf-api-key" or
    /// "unkey"; NULL for a key made by this store. (Fields are only ever
    /// added at the end of this struct.)
    pub origin: *const c_char,
    /// The kind of digest an imported key is still verified against
    /// ("sha256", "sha512", or Django's "pbkdf2_sha256", "pbkdf2_sha1",
    /// "argon2", "bcrypt_sha256", "bcrypt", "scrypt"), until its first
    /// successful verify re-digests it; NULL from then on, and for a key
    /// made by this store.
    pub legacy_digest: *const c_char,
}

/// What a successful verify tells about the key. A read-only view owned by
/// its `apikeys_verified`, valid until `apikeys_verified_free`.
#[allow(non_camel_case_types)]
#[repr(C)]
pub struct apikeys_verified_info {
    /// Public id. NUL-terminated UTF-8, like every string here.
    pub id: *const c_char,
    /// Human name.
    pub name: *const c_char,
    /// Environment tag; NULL if none.
    pub env: *const c_char,
    /// Granted scopes, space-separated; "" if none.
    pub scopes: *const c_char,
    /// Owner; NULL if none.
    pub owner: *const c_char,
    /// Expiry, Unix seconds UTC; 0 = never (a rotation may have set one).
    pub expires_at: i64,
}

/// Owns the C strings a view points into. A `CString`'s bytes live on the
/// heap, so the pointers survive moving this struct or growing the vector.
#[derive(Default)]
struct Strings(Vec<CString>);

impl Strings {
    fn text(&mut self, text: &str) -> *const c_char {
        let c = c_string(text);
        let pointer = c.as_ptr();
        self.0.push(c);
        pointer
    }

    fn optional(&mut self, text: Option<&str>) -> *const c_char {
        match text {
            Some(text) => self.text(text),
            None => ptr::null(),
        }
    }
}

fn unix_or_zero(time: Option<Timestamp>) -> i64 {
    time.map_or(0, Timestamp::unix)
}

/// An `apikeys_key_info` with the strings it points to.
pub(crate) struct OwnedKeyInfo {
    _strings: Strings,
    view: apikeys_key_info,
}

impl OwnedKeyInfo {
    pub(crate) fn new(info: &KeyInfo) -> Self {
        let mut strings = Strings::default();
        let view = apikeys_key_info {
            id: strings.text(&info.id),
            name: strings.text(&info.name),
            hint: strings.text(&info.hint),
            env: strings.optional(info.env.as_deref()),
            scopes: strings.text(&info.scopes.join(" ")),
            owner: strings.optional(info.owner.as_deref()),
            rotated_from: strings.optional(info.rotated_from.as_deref()),
            rotated_to: strings.optional(info.rotated_to.as_deref()),
            created_at: info.created_at.unix(),
            expires_at: unix_or_zero(info.expires_at),
            revoked_at: unix_or_zero(info.revoked_at),
            last_used: unix_or_zero(info.last_used),
            use_count: info.use_count,
            rejected_count: info.rejected_count,
            status: match info.status {
                Status::Active => apikeys_key_status::APIKEYS_KEY_ACTIVE,
                Status::Revoked => apikeys_key_status::APIKEYS_KEY_REVOKED,
                Status::Expired => apikeys_key_status::APIKEYS_KEY_EXPIRED,
            } as u32,
            origin: strings.optional(info.origin.map(|source| source.as_str())),
            legacy_digest: strings.optional(info.legacy_digest),
        };
        OwnedKeyInfo {
            _strings: strings,
            view,
        }
    }

    pub(crate) fn view(&self) -> &apikeys_key_info {
        &self.view
    }
}

/// An `apikeys_verified_info` with the strings it points to.
pub(crate) struct OwnedVerifiedInfo {
    _strings: Strings,
    view: apikeys_verified_info,
}

impl OwnedVerifiedInfo {
    pub(crate) fn new(key: &VerifiedKey<'_>) -> Self {
        let mut strings = Strings::default();
        let view = apikeys_verified_info {
            id: strings.text(key.id()),
            name: strings.text(key.name()),
            env: strings.optional(key.env()),
            scopes: strings.text(&key.scopes().join(" ")),
            owner: strings.optional(key.owner()),
            expires_at: unix_or_zero(key.expires_at()),
        };
        OwnedVerifiedInfo {
            _strings: strings,
            view,
        }
    }

    pub(crate) fn view(&self) -> &apikeys_verified_info {
        &self.view
    }
}
