//! Mount options as config.json spells them, turned into what the kernel takes:
//! `mount(2)` flags, propagation changes, `mount_setattr(2)` recursive attributes,
//! and the rest as the filesystem's data string.

use nix::mount::MsFlags;
use rt_sys::mount as attr;

/// A parsed `mounts[].options` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// Flags the options explicitly cleared (`rw`, `suid`...), so a remount keeps
    /// what the user did not mention.
    pub cleared: MsFlags,
    /// Each propagation change, applied in order after the mount.
    pub propagation: Vec<MsFlags>,
    /// Recursive attributes (`rro`, `rnosuid`...) to set and clear on the whole tree.
    pub rec_set: u64,
    pub rec_clear: u64,
    /// Filesystem-specific options, comma-joined.
    pub data: Vec<String>,
    pub idmap: Option<Idmap>,
    pub tmpcopyup: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idmap {
    Top,
    Recursive,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: vec![],
            rec_set: 0,
            rec_clear: 0,
            data: vec![],
            idmap: None,
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Self {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_ref();
            if let Some((set, flag)) = flag(opt) {
                if set {
                    o.flags.insert(flag);
                    o.cleared.remove(flag);
                } else {
                    o.flags.remove(flag);
                    o.cleared.insert(flag);
                }
            } else if let Some(p) = propagation(opt) {
                o.propagation.push(p);
            } else if let Some((set, a)) = recursive_attr(opt) {
                if set {
                    o.rec_set |= a;
                    o.rec_clear &= !a;
                } else {
                    o.rec_clear |= a;
                    o.rec_set &= !a;
                }
                if a & attr::MOUNT_ATTR__ATIME != 0 || a == attr::MOUNT_ATTR_RELATIME {
                    // Access-time modes are one field: setting one clears the others.
                    o.rec_clear |= attr::MOUNT_ATTR__ATIME;
                }
            } else {
                match opt {
                    "idmap" => o.idmap = Some(Idmap::Top),
                    "ridmap" => o.idmap = Some(Idmap::Recursive),
                    "tmpcopyup" => o.tmpcopyup = true,
                    "defaults" | "" => {}
                    _ => o.data.push(opt.to_string()),
                }
            }
        }
        o
    }

    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    pub fn is_recursive_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC)
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Flags a bind mount needs a second, remounting call for (bind ignores them).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

/// `(true, F)` sets F, `(false, F)` clears it.
fn flag(opt: &str) -> Option<(bool, MsFlags)> {
    use MsFlags as F;
    Some(match opt {
        "ro" => (true, F::MS_RDONLY),
        "rw" => (false, F::MS_RDONLY),
        "nosuid" => (true, F::MS_NOSUID),
        "suid" => (false, F::MS_NOSUID),
        "nodev" => (true, F::MS_NODEV),
        "dev" => (false, F::MS_NODEV),
        "noexec" => (true, F::MS_NOEXEC),
        "exec" => (false, F::MS_NOEXEC),
        "sync" => (true, F::MS_SYNCHRONOUS),
        "async" => (false, F::MS_SYNCHRONOUS),
        "dirsync" => (true, F::MS_DIRSYNC),
        "remount" => (true, F::MS_REMOUNT),
        "mand" => (true, F::MS_MANDLOCK),
        "nomand" => (false, F::MS_MANDLOCK),
        "noatime" => (true, F::MS_NOATIME),
        "atime" => (false, F::MS_NOATIME),
        "nodiratime" => (true, F::MS_NODIRATIME),
        "diratime" => (false, F::MS_NODIRATIME),
        "relatime" => (true, F::MS_RELATIME),
        "norelatime" => (false, F::MS_RELATIME),
        "strictatime" => (true, F::MS_STRICTATIME),
        "nostrictatime" => (false, F::MS_STRICTATIME),
        "lazytime" => (true, F::MS_LAZYTIME),
        "nolazytime" => (false, F::MS_LAZYTIME),
        "iversion" => (true, F::MS_I_VERSION),
        "noiversion" => (false, F::MS_I_VERSION),
        "silent" => (true, F::MS_SILENT),
        "loud" => (false, F::MS_SILENT),
        "bind" => (true, F::MS_BIND),
        "rbind" => (true, F::MS_BIND | F::MS_REC),
        "nosymfollow" => (true, F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        "symfollow" => (false, F::from_bits_retain(libc::MS_NOSYMFOLLOW)),
        _ => return None,
    })
}

fn propagation(opt: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match opt {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// Parse a propagation name (for `linux.rootfsPropagation`).
pub fn parse_propagation(name: &str) -> Option<MsFlags> {
    propagation(name)
}

fn recursive_attr(opt: &str) -> Option<(bool, u64)> {
    Some(match opt {
        "rro" => (true, attr::MOUNT_ATTR_RDONLY),
        "rrw" => (false, attr::MOUNT_ATTR_RDONLY),
        "rnosuid" => (true, attr::MOUNT_ATTR_NOSUID),
        "rsuid" => (false, attr::MOUNT_ATTR_NOSUID),
        "rnodev" => (true, attr::MOUNT_ATTR_NODEV),
        "rdev" => (false, attr::MOUNT_ATTR_NODEV),
        "rnoexec" => (true, attr::MOUNT_ATTR_NOEXEC),
        "rexec" => (false, attr::MOUNT_ATTR_NOEXEC),
        "rnodiratime" => (true, attr::MOUNT_ATTR_NODIRATIME),
        "rdiratime" => (false, attr::MOUNT_ATTR_NODIRATIME),
        "rrelatime" => (true, attr::MOUNT_ATTR_RELATIME),
        "rnorelatime" => (false, attr::MOUNT_ATTR_RELATIME),
        "rnoatime" => (true, attr::MOUNT_ATTR_NOATIME),
        "ratime" => (false, attr::MOUNT_ATTR_NOATIME),
        "rstrictatime" => (true, attr::MOUNT_ATTR_STRICTATIME),
        "rnostrictatime" => (false, attr::MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => (true, attr::MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => (false, attr::MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_data_and_propagation() {
        let o =
            MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
    }

    #[test]
    fn later_options_win() {
        let o = MountOptions::parse(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn bind_kinds_and_recursive_attrs() {
        let o = MountOptions::parse(&["rbind", "rro", "rnosuid"]);
        assert!(o.is_recursive_bind());
        assert_eq!(o.rec_set, attr::MOUNT_ATTR_RDONLY | attr::MOUNT_ATTR_NOSUID);
        let o = MountOptions::parse(&["bind", "ro"]);
        assert!(o.is_bind() && !o.is_recursive_bind());
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY);
    }

    #[test]
    fn special_options() {
        let o = MountOptions::parse(&["idmap", "tmpcopyup"]);
        assert_eq!(o.idmap, Some(Idmap::Top));
        assert!(o.tmpcopyup && o.data.is_empty());
    }
}
