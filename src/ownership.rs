//! Who may open a store file: the mode new files get, the files the
//! library creates beside a store taking the store's owner and mode, and the
//! message a process gets when it may not open the file.
//!
//! A store is usually created by an admin (root, or themselves) with the
//! command line and opened by workers running as another user (`www-data`,
//! `nobody`). The file stays owner-only unless its creator asks for a group
//! mode; what the library never does is widen a file's mode on its own.

#[cfg(unix)]
use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::Path;

use crate::error::Error;

/// The mode of a store file created by default: its owner only.
pub const OWNER_ONLY: u32 = 0o600;

/// The modes a store file may be given: owner only, group read (admin tools
/// run by a group that only lists), group read-write (workers in the group).
/// Never anything for other users, nor execute bits.
pub const ALLOWED_MODES: [u32; 3] = [0o600, 0o640, 0o660];

/// Checks a mode asked for a store file.
pub(crate) fn check_mode(mode: u32) -> Result<(), Error> {
    if ALLOWED_MODES.contains(&mode) {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "file mode {mode:o} is not one of 600, 640, 660: a store is never readable by other users"
        )))
    }
}

/// Creates the file with `mode` if it does not exist yet; an existing file
/// keeps its owner and permissions.
pub(crate) fn create_store_file(path: &Path, mode: u32) -> Result<(), Error> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    match options.open(path) {
        Ok(file) => {
            // The umask may have removed group bits that were asked for.
            set_mode(&file, mode)?;
            Ok(())
        }
        Err(error) if error.kind() == ErrorKind::AlreadyExists => {
            if path.is_dir() {
                Err(Error::InvalidArgument(format!(
                    "{} is a directory",
                    path.display()
                )))
            } else {
                Ok(())
            }
        }
        Err(error) => Err(io_error(error, path)),
    }
}

/// Opens (creating it if needed) a file that lives beside the store, such
/// as its shared index, read-write. A file it creates gets the store file's
/// mode and, when this process may give it (root), its owner and group, so
/// that workers running as the store's owner can open what an admin's
/// command created.
#[cfg_attr(not(unix), allow(unused_variables))]
pub(crate) fn open_beside(store: &Path, path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true);
    match options.open(path) {
        Ok(file) => return Ok(file),
        Err(error) if error.kind() == ErrorKind::NotFound => {}
        Err(error) => return Err(io_error(error, path)),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let owner = std::fs::metadata(store).map_err(|error| io_error(error, store))?;
        let mode = owner.mode() & 0o660;
        options.create(true).mode(mode);
        let file = options.open(path).map_err(|error| io_error(error, path))?;
        set_mode(&file, mode)?;
        let metadata = file.metadata().map_err(Error::Io)?;
        if metadata.uid() != owner.uid() || metadata.gid() != owner.gid() {
            // Only root can give a file away; anyone else created it as
            // themselves, which is the store's owner or a group member.
            std::os::unix::fs::fchown(&file, Some(owner.uid()), Some(owner.gid()))
                .or_else(|error| match error.raw_os_error() {
                    Some(libc::EPERM) => Ok(()),
                    _ => Err(error),
                })
                .map_err(|error| io_error(error, path))?;
        }
        Ok(file)
    }
    #[cfg(not(unix))]
    {
        options.create(true);
        options.open(path).map_err(|error| io_error(error, path))
    }
}

/// Opens `path` read-write, creating it owner-only (0600): an in-memory
/// store's shared index, which has no store file to take its mode from.
pub(crate) fn open_owner_only(path: &Path) -> Result<File, Error> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(OWNER_ONLY);
    }
    options.open(path).map_err(|error| io_error(error, path))
}

/// Gives an existing store file, and the files the library keeps beside it
/// (its shared index), an owner, a group and a mode (for `apikeys init
/// --owner www-data --mode 660`). `owner` is `USER` (with that user's
/// primary group), `USER:GROUP` or `:GROUP`, by name or number.
pub fn set_owner_and_mode(
    path: &Path,
    owner: Option<&str>,
    mode: Option<u32>,
) -> Result<(), Error> {
    if let Some(mode) = mode {
        check_mode(mode)?;
    }
    set_one(path, owner, mode)?;
    let index = crate::store::index_path(path);
    if index.exists() {
        set_one(&index, owner, mode)?;
    }
    Ok(())
}

fn set_one(path: &Path, owner: Option<&str>, mode: Option<u32>) -> Result<(), Error> {
    let file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|error| io_error(error, path))?;
    #[cfg(unix)]
    if let Some(owner) = owner {
        let (uid, gid) = resolve_owner(owner)?;
        std::os::unix::fs::fchown(&file, uid, gid).map_err(|error| io_error(error, path))?;
    }
    #[cfg(not(unix))]
    if owner.is_some() {
        return Err(Error::InvalidArgument(
            "file owners can be set only on Unix".into(),
        ));
    }
    if let Some(mode) = mode {
        set_mode(&file, mode)?;
    }
    Ok(())
}

#[cfg_attr(not(unix), allow(unused_variables))]
fn set_mode(file: &File, mode: u32) -> Result<(), Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .map_err(Error::Io)?;
    }
    Ok(())
}

/// An I/O error about `path`; refused access becomes
/// [`Error::PermissionDenied`], whose message says who owns what.
pub(crate) fn io_error(error: std::io::Error, path: &Path) -> Error {
    if error.kind() == ErrorKind::PermissionDenied {
        Error::PermissionDenied {
            path: path.to_path_buf(),
            detail: describe_access(path),
        }
    } else {
        Error::Io(error)
    }
}

/// "the file is owned by root:root with mode 600 and this process runs as
/// www-data (uid 33, gid 33)", or the same of the directory when the file
/// does not exist.
fn describe_access(path: &Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let (what, metadata) = match std::fs::metadata(path) {
            Ok(metadata) => ("the file", Some(metadata)),
            Err(_) => (
                "its directory",
                path.parent()
                    .map(|dir| {
                        if dir.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            dir
                        }
                    })
                    .and_then(|dir| std::fs::metadata(dir).ok()),
            ),
        };
        // SAFETY: geteuid and getegid cannot fail.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let owned = match metadata {
            Some(m) => format!(
                "{what} is owned by {}:{} with mode {:03o}",
                user_name(m.uid()),
                group_name(m.gid()),
                m.mode() & 0o7777
            ),
            None => format!("{what} cannot be read"),
        };
        format!(
            "{owned}, and this process runs as {} (uid {uid}, gid {gid}); open it as the file's owner, or create it for the workers' user with `apikeys init --owner USER[:GROUP] [--mode 660]`",
            user_name(uid)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        "this process may not open it".to_string()
    }
}

/// A user's name, or their number when the system has no entry.
#[cfg(unix)]
fn user_name(uid: libc::uid_t) -> String {
    passwd_entry(Lookup::Number(uid)).map_or_else(|| uid.to_string(), |entry| entry.2)
}

/// A group's name, or its number when the system has no entry.
#[cfg(unix)]
fn group_name(gid: libc::gid_t) -> String {
    group_entry(Lookup::Number(gid)).map_or_else(|| gid.to_string(), |entry| entry.1)
}

/// `USER`, `USER:GROUP` or `:GROUP`, by name or number. A user alone
/// (named or numbered) brings their primary group; `:GROUP` keeps the
/// file's owner (`None` for the user means the file keeps its owner).
#[cfg(unix)]
fn resolve_owner(spec: &str) -> Result<(Option<u32>, Option<u32>), Error> {
    let (user, group) = match spec.split_once(':') {
        Some((user, group)) => (user, group),
        None => (spec, ""),
    };
    let unknown = |what: &str, name: &str| {
        Error::InvalidArgument(format!(
            "no {what} named {:?} on this system",
            crate::error::excerpt(name)
        ))
    };
    let user = match user {
        "" => None,
        user => Some(match user.parse::<u32>() {
            // A number: the user may have no entry; then no primary group.
            Ok(uid) => (
                uid,
                passwd_entry(Lookup::Number(uid)).map(|(_, gid, _)| gid),
            ),
            Err(_) => {
                let (uid, gid, _) =
                    passwd_entry(Lookup::Name(user)).ok_or_else(|| unknown("user", user))?;
                (uid, Some(gid))
            }
        }),
    };
    let gid = match group {
        "" => user.and_then(|(_, primary)| primary),
        group => Some(match group.parse() {
            Ok(gid) => gid,
            Err(_) => group_entry(Lookup::Name(group))
                .map(|(gid, _)| gid)
                .ok_or_else(|| unknown("group", group))?,
        }),
    };
    Ok((user.map(|(uid, _)| uid), gid))
}

/// A user or group, by name or by number.
#[cfg(unix)]
enum Lookup<'a> {
    Name(&'a str),
    Number(u32),
}

/// A user's uid, primary gid and name.
#[cfg(unix)]
fn passwd_entry(lookup: Lookup<'_>) -> Option<(u32, u32, String)> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; getpw*_r write it and the strings it
    // points to inside `buffer`, which outlives the reads below.
    unsafe {
        let mut entry: libc::passwd = core::mem::zeroed();
        let mut found = core::ptr::null_mut();
        let (data, size) = (buffer.as_mut_ptr(), buffer.len());
        let status = match lookup {
            Lookup::Name(name) => {
                let name = std::ffi::CString::new(name).ok()?;
                libc::getpwnam_r(name.as_ptr(), &mut entry, data, size, &mut found)
            }
            Lookup::Number(uid) => libc::getpwuid_r(uid, &mut entry, data, size, &mut found),
        };
        (status == 0 && !found.is_null()).then(|| {
            let name = CStr::from_ptr(entry.pw_name).to_string_lossy().into_owned();
            (entry.pw_uid, entry.pw_gid, name)
        })
    }
}

/// A group's gid and name.
#[cfg(unix)]
fn group_entry(lookup: Lookup<'_>) -> Option<(u32, String)> {
    let mut buffer = vec![0 as libc::c_char; 16_384];
    // SAFETY: as in `passwd_entry`, for the group database.
    unsafe {
        let mut entry: libc::group = core::mem::zeroed();
        let mut found = core::ptr::null_mut();
        let (data, size) = (buffer.as_mut_ptr(), buffer.len());
        let status = match lookup {
            Lookup::Name(name) => {
                let name = std::ffi::CString::new(name).ok()?;
                libc::getgrnam_r(name.as_ptr(), &mut entry, data, size, &mut found)
            }
            Lookup::Number(gid) => libc::getgrgid_r(gid, &mut entry, data, size, &mut found),
        };
        (status == 0 && !found.is_null()).then(|| {
            let name = CStr::from_ptr(entry.gr_name).to_string_lossy().into_owned();
            (entry.gr_gid, name)
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn new_store_files_get_the_mode_asked_for_even_under_a_strict_umask() {
        let dir = tempfile::tempdir().unwrap();
        for mode in ALLOWED_MODES {
            let path = dir.path().join(format!("{mode:o}.redb"));
            create_store_file(&path, mode).unwrap();
            assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, mode);
        }
    }

    #[test]
    fn modes_readable_by_others_are_refused() {
        for mode in [0o644, 0o666, 0o700, 0o604, 0o4600] {
            assert!(
                matches!(check_mode(mode), Err(Error::InvalidArgument(_))),
                "{mode:o}"
            );
        }
    }

    #[test]
    fn an_existing_store_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.redb");
        create_store_file(&path, 0o660).unwrap();
        create_store_file(&path, 0o600).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o660);
    }

    #[test]
    fn files_beside_the_store_take_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("keys.redb");
        create_store_file(&store, 0o640).unwrap();
        let side = dir.path().join("keys.redb.index");
        open_beside(&store, &side).unwrap();
        let metadata = std::fs::metadata(&side).unwrap();
        assert_eq!(metadata.mode() & 0o777, 0o640);
        assert_eq!(metadata.uid(), std::fs::metadata(&store).unwrap().uid());
    }

    #[test]
    fn owners_resolve_by_name_and_number() {
        assert_eq!(resolve_owner("0").unwrap(), (Some(0), Some(0)));
        assert_eq!(resolve_owner("root").unwrap(), (Some(0), Some(0)));
        assert_eq!(resolve_owner("root:root").unwrap(), (Some(0), Some(0)));
        assert_eq!(resolve_owner(":0").unwrap(), (None, Some(0)));
        assert_eq!(resolve_owner("4000000:").unwrap(), (Some(4_000_000), None));
        assert!(matches!(
            resolve_owner("no-such-user-apikeys"),
            Err(Error::InvalidArgument(message)) if message.contains("no-such-user-apikeys")
        ));
    }
}
