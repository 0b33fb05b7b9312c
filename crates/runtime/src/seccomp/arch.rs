//! The syscall ABIs a filter tells apart, and which of a profile's `architectures`
//! can run on this host.
//!
//! The kernel hands the filter the ABI's `AUDIT_ARCH_*` value and the raw syscall
//! number. x32 shares `AUDIT_ARCH_X86_64` with x86_64: its numbers have bit 30
//! (`__X32_SYSCALL_BIT`) set, and its tables here include that bit.

use oci_spec::runtime::Arch;

use super::syscalls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Abi {
    X86_64,
    X86,
    X32,
    Aarch64,
}

pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

impl Abi {
    /// The ABI rt itself runs in, when rt knows its syscalls.
    pub(super) fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else {
            None
        }
    }

    /// The ABIs whose processes this host's kernel can run (and rt has tables for).
    pub(super) fn runnable() -> &'static [Abi] {
        match Abi::native() {
            Some(Abi::X86_64) => &[Abi::X86_64, Abi::X86, Abi::X32],
            Some(Abi::Aarch64) => &[Abi::Aarch64],
            _ => &[],
        }
    }

    /// `AUDIT_ARCH_*` (linux/audit.h).
    pub(super) fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => 0xc000_003e,
            Abi::X86 => 0x4000_0003,
            Abi::Aarch64 => 0xc000_00b7,
        }
    }

    /// The profile's name for it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::X86 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    /// Arguments are compared on 64 bits, or on their low 32 bits (as libseccomp
    /// does for 32-bit ABIs, x32 included).
    pub(super) fn wide_args(self) -> bool {
        matches!(self, Abi::X86_64 | Abi::Aarch64)
    }

    /// The number of syscall `name`, if this ABI has it.
    pub(super) fn syscall(self, name: &str) -> Option<u32> {
        let table = match self {
            Abi::X86_64 => syscalls::X86_64,
            Abi::X86 => syscalls::X86,
            Abi::X32 => syscalls::X32,
            Abi::Aarch64 => syscalls::AARCH64,
        };
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    }

    fn from_spec(a: Arch) -> Option<Abi> {
        match a {
            Arch::ScmpArchNative => Abi::native(),
            Arch::ScmpArchX86_64 => Some(Abi::X86_64),
            Arch::ScmpArchX86 => Some(Abi::X86),
            Arch::ScmpArchX32 => Some(Abi::X32),
            Arch::ScmpArchAarch64 => Some(Abi::Aarch64),
            _ => None,
        }
    }
}

/// The ABIs the filter covers, native first: the native one always (libseccomp's
/// filters always include it), and those of `listed` that can run here. Others
/// (a profile lists every architecture it was written for) cannot occur on this
/// host and are left out; their syscalls meet the bad-architecture action anyway.
pub(super) fn covered(listed: &[Arch]) -> Vec<Abi> {
    let native = Abi::native().expect("checked by the caller");
    let mut out = vec![native];
    for &a in listed {
        match Abi::from_spec(a) {
            Some(abi) if Abi::runnable().contains(&abi) => {
                if !out.contains(&abi) {
                    out.push(abi);
                }
            }
            _ => log::debug!("seccomp: architecture {a} cannot run on this host: left out"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_look_up() {
        for t in [
            syscalls::X86_64,
            syscalls::X86,
            syscalls::X32,
            syscalls::AARCH64,
        ] {
            assert!(t.windows(2).all(|w| w[0].0 < w[1].0));
        }
        assert_eq!(Abi::X86_64.syscall("read"), Some(0));
        assert_eq!(Abi::X86_64.syscall("mkdir"), Some(83));
        assert_eq!(Abi::X86.syscall("read"), Some(3));
        assert_eq!(Abi::X86.syscall("_llseek"), Some(140));
        assert_eq!(Abi::X32.syscall("read"), Some(X32_SYSCALL_BIT));
        assert_eq!(Abi::Aarch64.syscall("mkdirat"), Some(34));
        // aarch64 has only the *at forms.
        assert_eq!(Abi::Aarch64.syscall("mkdir"), None);
        assert_eq!(Abi::X86_64.syscall("no_such_syscall"), None);
        assert_eq!(Abi::X86_64.syscall("file_setattr"), Some(469));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn covered_keeps_native_first_and_drops_foreign_archs() {
        assert_eq!(covered(&[]), vec![Abi::X86_64]);
        assert_eq!(
            covered(&[Arch::ScmpArchX86, Arch::ScmpArchX86_64, Arch::ScmpArchX32]),
            vec![Abi::X86_64, Abi::X86, Abi::X32]
        );
        assert_eq!(
            covered(&[
                Arch::ScmpArchAarch64,
                Arch::ScmpArchMips,
                Arch::ScmpArchNative
            ]),
            vec![Abi::X86_64]
        );
    }
}
