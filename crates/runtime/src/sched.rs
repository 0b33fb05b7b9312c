//! `process.scheduler`, `process.ioPriority` and `linux.personality`: how the kernel
//! schedules and runs the container process.

use oci_spec::runtime::{
    IOPriorityClass, LinuxIOPriority, LinuxPersonality, LinuxPersonalityDomain, LinuxSchedulerFlag,
    LinuxSchedulerPolicy, Scheduler,
};
use rt_sys::sched::{self, SchedAttr};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SchedError {
    #[error("set scheduler {policy}: {source}")]
    Scheduler { policy: String, source: nix::Error },
    #[error("set I/O priority {class} {level}: {source}")]
    IoPriority {
        class: String,
        level: i64,
        source: nix::Error,
    },
    #[error("set personality {domain}: {source}")]
    Personality { domain: String, source: nix::Error },
    #[error("unknown personality flag {0:?}")]
    PersonalityFlag(String),
}

pub fn apply_scheduler(s: &Scheduler) -> Result<(), SchedError> {
    use LinuxSchedulerPolicy as P;
    let policy = match s.policy() {
        P::SchedOther => libc::SCHED_OTHER,
        P::SchedFifo => libc::SCHED_FIFO,
        P::SchedRr => libc::SCHED_RR,
        P::SchedBatch => libc::SCHED_BATCH,
        P::SchedIso => 4,
        P::SchedIdle => libc::SCHED_IDLE,
        P::SchedDeadline => 6,
    };
    let mut flags = 0u64;
    for f in s.flags().iter().flatten() {
        use LinuxSchedulerFlag as F;
        flags |= match f {
            F::SchedResetOnFork => 0x01,
            F::SchedFlagReclaim => 0x02,
            F::SchedFlagDLOverrun => 0x04,
            F::SchedFlagKeepPolicy => 0x08,
            F::SchedFlagKeepParams => 0x10,
            F::SchedFlagUtilClampMin => 0x20,
            F::SchedFlagUtilClampMax => 0x40,
        };
    }
    let attr = SchedAttr {
        policy: policy as u32,
        flags,
        nice: s.nice().unwrap_or(0),
        priority: s.priority().unwrap_or(0) as u32,
        runtime: s.runtime().unwrap_or(0),
        deadline: s.deadline().unwrap_or(0),
        period: s.period().unwrap_or(0),
        ..Default::default()
    };
    sched::set_attr(attr).map_err(|source| SchedError::Scheduler {
        policy: s.policy().to_string(),
        source,
    })
}

pub fn apply_io_priority(p: &LinuxIOPriority) -> Result<(), SchedError> {
    let class = match p.class() {
        IOPriorityClass::IoprioClassRt => 1,
        IOPriorityClass::IoprioClassBe => 2,
        IOPriorityClass::IoprioClassIdle => 3,
    };
    sched::set_io_priority(class, p.priority() as u32).map_err(|source| SchedError::IoPriority {
        class: p.class().to_string(),
        level: p.priority(),
        source,
    })
}

pub fn apply_personality(p: &LinuxPersonality) -> Result<(), SchedError> {
    let mut persona: u32 = match p.domain() {
        LinuxPersonalityDomain::PerLinux => 0x0000,
        LinuxPersonalityDomain::PerLinux32 => 0x0008,
    };
    for f in p.flags().iter().flatten() {
        persona |= match f.as_str() {
            "ADDR_NO_RANDOMIZE" => 0x0040000,
            "MMAP_PAGE_ZERO" => 0x0100000,
            "ADDR_COMPAT_LAYOUT" => 0x0200000,
            "READ_IMPLIES_EXEC" => 0x0400000,
            "ADDR_LIMIT_32BIT" => 0x0800000,
            "SHORT_INODE" => 0x1000000,
            "WHOLE_SECONDS" => 0x2000000,
            "STICKY_TIMEOUTS" => 0x4000000,
            "ADDR_LIMIT_3GB" => 0x8000000,
            "UNAME26" => 0x0020000,
            "FDPIC_FUNCPTRS" => 0x0080000,
            other => return Err(SchedError::PersonalityFlag(other.to_string())),
        };
    }
    sched::set_personality(persona).map_err(|source| SchedError::Personality {
        domain: p.domain().to_string(),
        source,
    })
}
