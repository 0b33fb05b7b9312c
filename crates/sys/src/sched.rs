//! Scheduling attributes, I/O priority and execution domain of the calling process.

use nix::errno::Errno;

use crate::Result;

/// `struct sched_attr` of `sched_setattr(2)`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// `sched_setattr(2)` on this thread.
pub fn set_attr(mut attr: SchedAttr) -> Result<()> {
    attr.size = std::mem::size_of::<SchedAttr>() as u32;
    // SAFETY: a fully initialised sched_attr whose size field matches the struct.
    let ret = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) };
    Errno::result(ret).map(drop)
}

/// `ioprio_set(IOPRIO_WHO_PROCESS, 0, class << 13 | level)`.
pub fn set_io_priority(class: u32, level: u32) -> Result<()> {
    const IOPRIO_WHO_PROCESS: libc::c_int = 1;
    let prio = (class << 13) | (level & 0x1fff);
    // SAFETY: integer arguments only.
    let ret = unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0, prio) };
    Errno::result(ret).map(drop)
}

/// `personality(2)`.
pub fn set_personality(persona: u32) -> Result<()> {
    // SAFETY: integer argument only.
    let ret = unsafe { libc::personality(persona as libc::c_ulong) };
    Errno::result(ret).map(drop)
}
