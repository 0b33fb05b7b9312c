//! `process.rlimits`, applied exactly (soft and hard) to the container process.

use oci_spec::runtime::{PosixRlimit, PosixRlimitType};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("set rlimit {kind} (soft {soft}, hard {hard}): {source}")]
pub struct RlimitError {
    kind: String,
    soft: u64,
    hard: u64,
    source: nix::Error,
}

fn resource(t: PosixRlimitType) -> libc::__rlimit_resource_t {
    use PosixRlimitType as T;
    match t {
        T::RlimitCpu => libc::RLIMIT_CPU,
        T::RlimitFsize => libc::RLIMIT_FSIZE,
        T::RlimitData => libc::RLIMIT_DATA,
        T::RlimitStack => libc::RLIMIT_STACK,
        T::RlimitCore => libc::RLIMIT_CORE,
        T::RlimitRss => libc::RLIMIT_RSS,
        T::RlimitNproc => libc::RLIMIT_NPROC,
        T::RlimitNofile => libc::RLIMIT_NOFILE,
        T::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        T::RlimitAs => libc::RLIMIT_AS,
        T::RlimitLocks => libc::RLIMIT_LOCKS,
        T::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        T::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        T::RlimitNice => libc::RLIMIT_NICE,
        T::RlimitRtprio => libc::RLIMIT_RTPRIO,
        T::RlimitRttime => libc::RLIMIT_RTTIME,
    }
}

pub fn apply(limits: &[PosixRlimit]) -> Result<(), RlimitError> {
    for l in limits {
        let res = resource(l.typ());
        rt_sys::rlimit::set(res, l.soft(), l.hard()).map_err(|source| RlimitError {
            kind: l.typ().to_string(),
            soft: l.soft(),
            hard: l.hard(),
            source,
        })?;
    }
    Ok(())
}
