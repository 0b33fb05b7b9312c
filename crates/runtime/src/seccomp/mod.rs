//! `linux.seccomp`: the profile compiled to a classic-BPF filter in the parent
//! (`create`, `exec`), so a bad profile is an error before anything is set up, and
//! loaded by the container process as late as it can (see `Prepared::install`).
//!
//! What the filter does, as runc with libseccomp does it:
//!
//! * Syscall names are looked up per architecture (`syscalls.rs`); a name unknown
//!   there is skipped (logged at debug), as libseccomp skips names it does not know.
//! * A rule whose action is the default action is dropped (runc does, before
//!   libseccomp sees it). Per syscall, the first rule without `args` wins and beats
//!   every rule with `args`; rules with `args` are tried in profile order, the first
//!   that matches decides (where libseccomp would merge them into a tree and refuse
//!   conflicting ones, rt takes the first). Conditions of one rule must all hold;
//!   several conditions on one argument make one rule each (runc's "old behaviour",
//!   which real profiles rely on). `SCMP_CMP_MASKED_EQ` is `(arg & value) == valueTwo`.
//! * Architectures: the native one always, plus those listed that can run here (on
//!   x86_64: x86 and x32). A syscall of any other ABI kills the process.
//! * Unless the default action lets syscalls through (allow, log, trace) or is already
//!   ENOSYS, a syscall numbered above the highest one the profile names for its ABI
//!   fails with ENOSYS instead of the default action: a libc that tries a syscall newer
//!   than the profile then falls back to the old one, as it would on an old kernel
//!   (runc's patchbpf stub).
//!
//! The program (per ABI: ENOSYS stub, rules with `args`, the `args`-less rules as runs
//! of `JEQ` per action, the default) is laid out by `bpf.rs`; seccompiler compiles the
//! argument comparisons.

mod arch;
mod bpf;
pub mod notify;
mod syscalls;

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};
use rt_sys::seccomp::{self as sys, SockFilter};
use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompRule};
use thiserror::Error;

use self::arch::{Abi, X32_SYSCALL_BIT};
use self::bpf::{jump, stmt, Asm};
use crate::hooks::HookState;
pub use notify::Agent;

#[derive(Debug, Error)]
pub enum SeccompError {
    #[error("linux.seccomp: rt has no syscall table for {0}")]
    UnsupportedHost(&'static str),
    #[error("linux.seccomp.{field}: {value} is out of range for {action} (at most {max})")]
    ErrnoRange {
        field: String,
        action: LinuxSeccompAction,
        value: u32,
        max: u32,
    },
    #[error("linux.seccomp.{field}: {action} returns no errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take one)")]
    ErrnoNotTaken {
        field: String,
        action: LinuxSeccompAction,
    },
    #[error("linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action: rt's own last syscalls would wait for an agent that does not have the listener yet")]
    NotifyDefault,
    #[error("linux.seccomp.syscalls[{index}]: SCMP_ACT_NOTIFY cannot be used for {name}: rt hands the listener to the agent with it")]
    NotifyReserved { index: usize, name: String },
    #[error("linux.seccomp: SCMP_ACT_NOTIFY is used but linux.seccomp.listenerPath is not set")]
    NotifyWithoutListener,
    #[error("linux.seccomp.syscalls[{index}].args[{arg}].index: {value} is not an argument index (0 to 5)")]
    ArgIndex {
        index: usize,
        arg: usize,
        value: usize,
    },
    #[error("linux.seccomp.syscalls[{index}] ({name}): {reason}")]
    Rule {
        index: usize,
        name: String,
        reason: String,
    },
    #[error("linux.seccomp: the filter has {0} instructions, more than the kernel takes ({max})", max = sys::MAX_INSNS)]
    TooLarge(usize),
    #[error("load the seccomp filter: {0}")]
    Load(nix::Error),
    #[error("connect to the seccomp agent at {path}: {source}")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("send the seccomp listener to the agent at {path}: {source}")]
    Send { path: PathBuf, source: nix::Error },
}

/// A compiled profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub filter: Vec<SockFilter>,
    /// `SECCOMP_FILTER_FLAG_*` for seccomp(2).
    pub flags: u32,
    /// Some rule notifies: the filter is loaded with NEW_LISTENER, and the listener
    /// goes to the agent at `listenerPath`.
    pub listener: bool,
}

/// What a container process needs to install the container's filter: the program
/// and, when it has a listener, the connection to the agent.
#[derive(Debug)]
pub struct Prepared {
    pub program: Program,
    pub agent: Option<Agent>,
}

/// Compile `seccomp` and, if it notifies, connect to its agent. In the parent.
pub fn prepare(seccomp: &LinuxSeccomp) -> Result<Prepared, SeccompError> {
    let program = compile(seccomp)?;
    let agent = if program.listener {
        Some(Agent::connect(seccomp)?)
    } else {
        None
    };
    Ok(Prepared { program, agent })
}

impl Prepared {
    /// Whether to load before the process drops its capabilities. Without
    /// no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter, which the
    /// process has only until then; with it, the filter is loaded right before
    /// execve, so as few of rt's own syscalls as possible go through it (runc's
    /// order too).
    pub fn loads_early(no_new_privileges: bool) -> bool {
        !no_new_privileges
    }

    /// Load the filter into this process, then hand the listener (if any) to the
    /// agent, with `state` of the container and `pid` (the host's) of this process.
    /// Every syscall after this one goes through the filter.
    pub fn install(&self, pid: i32, state: &HookState<'_>) -> Result<(), SeccompError> {
        let payload = self.agent.as_ref().map(|a| a.payload(pid, state));
        let listener = load(&self.program)?;
        if let (Some(agent), Some(payload), Some(listener)) = (&self.agent, payload, listener) {
            agent.send(&payload, &listener)?;
        }
        Ok(())
    }
}

/// Load `p` into the calling thread; the listener when `p.listener`.
pub fn load(p: &Program) -> Result<Option<OwnedFd>, SeccompError> {
    sys::set_mode_filter(&p.filter, p.flags).map_err(SeccompError::Load)
}

/// Which seccomp features `rt features` reports (runc's shape).
pub fn features() -> serde_json::Value {
    let known = [
        ("SECCOMP_FILTER_FLAG_TSYNC", sys::FILTER_FLAG_TSYNC),
        (
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            sys::FILTER_FLAG_SPEC_ALLOW,
        ),
        ("SECCOMP_FILTER_FLAG_LOG", sys::FILTER_FLAG_LOG),
        (
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            sys::FILTER_FLAG_WAIT_KILLABLE_RECV,
        ),
    ];
    let supported: Vec<&str> = known
        .iter()
        .filter(|(_, f)| sys::filter_flag_supported(*f))
        .map(|(n, _)| *n)
        .collect();
    let mut archs: Vec<&str> = Abi::runnable().iter().map(|a| a.name()).collect();
    archs.sort();
    serde_json::json!({
        "enabled": Abi::native().is_some(),
        "actions": [
            "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
            "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE",
            "SCMP_ACT_TRAP"
        ],
        "operators": [
            "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
            "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"
        ],
        "archs": archs,
        "knownFlags": known.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "supportedFlags": supported,
    })
}

/// One comparison of a rule: argument `index`, seccompiler's operator, the value.
#[derive(Debug, Clone)]
struct Cond {
    index: u8,
    op: SeccompCmpOp,
    value: u64,
}

/// Which calls a syscall entry matches: all, or those matching one of the rules
/// (each a list of conditions that must all hold).
#[derive(Debug, Clone)]
enum Match {
    Always,
    Any(Vec<Vec<Cond>>),
}

/// A rule with `args`, as the profile gave it (for errors: entry and name).
#[derive(Debug, Clone)]
struct CondRule {
    action: u32,
    rules: Vec<Vec<Cond>>,
    index: usize,
    name: String,
}

/// The profile for one ABI.
struct AbiRules {
    abi: Abi,
    /// Syscalls with an `args`-less rule: their action.
    plain: BTreeMap<u32, u32>,
    /// Syscalls with only rules with `args`: the rules in profile order.
    conditional: BTreeMap<u32, Vec<CondRule>>,
    /// The highest syscall number the profile names (whatever the rule's action).
    max: Option<u32>,
}

impl AbiRules {
    /// libseccomp's precedence: an `args`-less rule for the syscall, earlier or
    /// later, makes its rules with `args` moot; the first `args`-less rule stays.
    fn add(&mut self, nr: u32, action: u32, m: &Match, index: usize, name: &str) {
        if self.plain.contains_key(&nr) {
            return;
        }
        match m {
            Match::Always => {
                self.plain.insert(nr, action);
                self.conditional.remove(&nr);
            }
            Match::Any(rules) => self.conditional.entry(nr).or_default().push(CondRule {
                action,
                rules: rules.clone(),
                index,
                name: name.to_string(),
            }),
        }
    }
}

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS_RET: u32 = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
const BAD_ARCH: u32 = libc::SECCOMP_RET_KILL_PROCESS;

/// The filter's return value for `action` (with `errno`, named `field` in errors).
fn action_ret(
    action: LinuxSeccompAction,
    errno: Option<u32>,
    field: impl Fn() -> String,
) -> Result<u32, SeccompError> {
    use LinuxSeccompAction as A;
    let data = |max: u32| {
        let value = errno.unwrap_or(EPERM);
        if value > max {
            return Err(SeccompError::ErrnoRange {
                field: field(),
                action,
                value,
                max,
            });
        }
        Ok(value)
    };
    if errno.is_some() && !matches!(action, A::ScmpActErrno | A::ScmpActTrace) {
        // The runtime spec: "When the action doesn't support an errno, the runtime
        // MUST print and error and fail."
        return Err(SeccompError::ErrnoNotTaken {
            field: field(),
            action,
        });
    }
    Ok(match action {
        // SCMP_ACT_KILL is libseccomp's old name for killing the thread.
        A::ScmpActKill | A::ScmpActKillThread => SeccompAction::KillThread.into(),
        A::ScmpActKillProcess => SeccompAction::KillProcess.into(),
        A::ScmpActTrap => SeccompAction::Trap.into(),
        // The kernel caps an errno at 4095 (MAX_ERRNO): refuse what it would change.
        A::ScmpActErrno => SeccompAction::Errno(data(4095)?).into(),
        A::ScmpActTrace => SeccompAction::Trace(data(0xffff)?).into(),
        A::ScmpActAllow => SeccompAction::Allow.into(),
        A::ScmpActLog => SeccompAction::Log.into(),
        // seccompiler has no SECCOMP_RET_USER_NOTIF.
        A::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
    })
}

/// The entry's `args` as rules (runc's splitting, see the module comment).
fn matcher(index: usize, sc: &LinuxSyscall) -> Result<Match, SeccompError> {
    let args: &[LinuxSeccompArg] = sc.args().as_deref().unwrap_or_default();
    if args.is_empty() {
        return Ok(Match::Always);
    }
    let mut conds = Vec::with_capacity(args.len());
    for (i, a) in args.iter().enumerate() {
        if a.index() > 5 {
            return Err(SeccompError::ArgIndex {
                index,
                arg: i,
                value: a.index(),
            });
        }
        use LinuxSeccompOperator as O;
        let (op, value) = match a.op() {
            O::ScmpCmpEq => (SeccompCmpOp::Eq, a.value()),
            O::ScmpCmpNe => (SeccompCmpOp::Ne, a.value()),
            O::ScmpCmpLt => (SeccompCmpOp::Lt, a.value()),
            O::ScmpCmpLe => (SeccompCmpOp::Le, a.value()),
            O::ScmpCmpGt => (SeccompCmpOp::Gt, a.value()),
            O::ScmpCmpGe => (SeccompCmpOp::Ge, a.value()),
            // libseccomp: value is the mask, valueTwo the datum.
            O::ScmpCmpMaskedEq => (
                SeccompCmpOp::MaskedEq(a.value()),
                a.value_two().unwrap_or(0),
            ),
        };
        conds.push(Cond {
            index: a.index() as u8,
            op,
            value,
        });
    }
    let mut seen = [0usize; 6];
    for c in &conds {
        seen[usize::from(c.index)] += 1;
    }
    if seen.iter().any(|&n| n > 1) {
        Ok(Match::Any(conds.into_iter().map(|c| vec![c]).collect()))
    } else {
        Ok(Match::Any(vec![conds]))
    }
}

/// Compile the profile for this host.
pub fn compile(seccomp: &LinuxSeccomp) -> Result<Program, SeccompError> {
    Abi::native().ok_or(SeccompError::UnsupportedHost(std::env::consts::ARCH))?;
    if seccomp.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(SeccompError::NotifyDefault);
    }
    let default = action_ret(
        seccomp.default_action(),
        seccomp.default_errno_ret(),
        || "defaultErrnoRet".into(),
    )?;
    let mut flags = 0;
    for f in seccomp.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => sys::FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => sys::FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => sys::FILTER_FLAG_SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                sys::FILTER_FLAG_WAIT_KILLABLE_RECV
            }
        };
    }
    let mut abis: Vec<AbiRules> =
        arch::covered(seccomp.architectures().as_deref().unwrap_or_default())
            .into_iter()
            .map(|abi| AbiRules {
                abi,
                plain: BTreeMap::new(),
                conditional: BTreeMap::new(),
                max: None,
            })
            .collect();
    let mut listener = false;
    for (index, sc) in seccomp.syscalls().iter().flatten().enumerate() {
        let action = action_ret(sc.action(), sc.errno_ret(), || {
            format!("syscalls[{index}].errnoRet")
        })?;
        let notify = sc.action() == LinuxSeccompAction::ScmpActNotify;
        let m = matcher(index, sc)?;
        for name in sc.names() {
            if notify && name == "sendmsg" {
                return Err(SeccompError::NotifyReserved {
                    index,
                    name: name.clone(),
                });
            }
            let mut known = false;
            for r in &mut abis {
                let Some(nr) = r.abi.syscall(name) else {
                    continue;
                };
                known = true;
                r.max = r.max.max(Some(nr));
                if action == default {
                    continue;
                }
                listener |= notify;
                r.add(nr, action, &m, index, name);
            }
            if !known {
                log::debug!(
                    "seccomp: unknown syscall {name:?} (linux.seccomp.syscalls[{index}]) skipped"
                );
            }
        }
    }
    if listener {
        if seccomp
            .listener_path()
            .as_ref()
            .is_none_or(|p| p.as_os_str().is_empty())
        {
            return Err(SeccompError::NotifyWithoutListener);
        }
        flags |= sys::FILTER_FLAG_NEW_LISTENER;
        if flags & sys::FILTER_FLAG_TSYNC != 0 {
            // The kernel takes TSYNC with NEW_LISTENER only this way.
            flags |= sys::FILTER_FLAG_TSYNC_ESRCH;
        }
    }
    use LinuxSeccompAction as A;
    let enosys = match seccomp.default_action() {
        // Whatever lets syscalls through lets new ones through too; a tracer handles
        // ENOSYS itself (runc's reasoning).
        A::ScmpActAllow | A::ScmpActLog | A::ScmpActTrace => false,
        _ => default != ENOSYS_RET,
    };
    let filter = emit(&abis, default, enosys)?;
    Ok(Program {
        filter,
        flags,
        listener,
    })
}

/// Lay the program out (see the module comment).
fn emit(abis: &[AbiRules], default: u32, enosys: bool) -> Result<Vec<SockFilter>, SeccompError> {
    let mut asm = Asm::default();
    asm.push(stmt(bpf::LD_W_ABS, bpf::DATA_ARCH));
    // One entry per AUDIT_ARCH value (x86_64 and x32 share one), native first.
    let mut entries: Vec<(u32, bpf::Label)> = vec![];
    for r in abis {
        let aa = r.abi.audit_arch();
        if !entries.iter().any(|e| e.0 == aa) {
            entries.push((aa, asm.label()));
        }
    }
    for &(aa, l) in &entries {
        asm.push(jump(bpf::JMP_JEQ_K, aa, 0, 1));
        asm.ja(l);
    }
    asm.push(stmt(bpf::RET_K, BAD_ARCH));
    for (aa, l) in entries {
        asm.mark(l);
        asm.push(stmt(bpf::LD_W_ABS, bpf::DATA_NR));
        let find = |abi| abis.iter().find(|r| r.abi == abi);
        if aa == Abi::X86_64.audit_arch() {
            // x32 calls have the x32 bit set: to the x32 part, or killed.
            let x32 = find(Abi::X32).map(|r| (r, asm.label()));
            asm.push(jump(bpf::JMP_JSET_K, X32_SYSCALL_BIT, 0, 1));
            match &x32 {
                Some((_, l)) => asm.ja(*l),
                None => asm.push(stmt(bpf::RET_K, BAD_ARCH)),
            }
            match find(Abi::X86_64) {
                Some(r) => part(&mut asm, r, default, enosys)?,
                None => asm.push(stmt(bpf::RET_K, BAD_ARCH)),
            }
            if let Some((r, l)) = x32 {
                asm.mark(l);
                part(&mut asm, r, default, enosys)?;
            }
        } else {
            let r = abis
                .iter()
                .find(|r| r.abi.audit_arch() == aa)
                .expect("an entry per ABI");
            part(&mut asm, r, default, enosys)?;
        }
    }
    let filter = asm.finish();
    if filter.len() > sys::MAX_INSNS {
        return Err(SeccompError::TooLarge(filter.len()));
    }
    Ok(filter)
}

/// One ABI's rules; entered with the syscall number loaded.
fn part(asm: &mut Asm, r: &AbiRules, default: u32, enosys: bool) -> Result<(), SeccompError> {
    if let (true, Some(max)) = (enosys, r.max) {
        asm.push(jump(bpf::JMP_JGT_K, max, 0, 1));
        asm.push(stmt(bpf::RET_K, ENOSYS_RET));
    }
    let len = if r.abi.wide_args() {
        SeccompCmpArgLen::Qword
    } else {
        SeccompCmpArgLen::Dword
    };
    let mut chains = false;
    for (&nr, rules) in &r.conditional {
        // Consecutive rules of one action make one chain; order between actions stays.
        for group in rules.chunk_by(|a, b| a.action == b.action) {
            let first = &group[0];
            let err = |reason: String| SeccompError::Rule {
                index: first.index,
                name: first.name.clone(),
                reason,
            };
            let mut built = vec![];
            for conds in group.iter().flat_map(|g| &g.rules) {
                if let Some(rule) = seccompiler_rule(conds, &len).map_err(&err)? {
                    built.push(rule);
                }
            }
            if built.is_empty() {
                continue;
            }
            asm.extend(bpf::rule_chain(nr, built, first.action).map_err(err)?);
            chains = true;
        }
    }
    if chains {
        asm.push(stmt(bpf::LD_W_ABS, bpf::DATA_NR));
    }
    let mut by_action: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (&nr, &action) in &r.plain {
        by_action.entry(action).or_default().push(nr);
    }
    for (action, nrs) in by_action {
        asm.extend(bpf::syscall_set(&nrs, action));
    }
    asm.push(stmt(bpf::RET_K, default));
    Ok(())
}

/// One rule for seccompiler; None if it can never match (a masked comparison with a
/// datum outside its mask, which libseccomp's `(arg & mask) == datum` never meets but
/// seccompiler would compare as `datum & mask`).
fn seccompiler_rule(conds: &[Cond], len: &SeccompCmpArgLen) -> Result<Option<SeccompRule>, String> {
    let mut out = Vec::with_capacity(conds.len());
    for c in conds {
        if let SeccompCmpOp::MaskedEq(mask) = c.op {
            let (mask, value) = match len {
                SeccompCmpArgLen::Qword => (mask, c.value),
                SeccompCmpArgLen::Dword => (mask & 0xffff_ffff, c.value & 0xffff_ffff),
            };
            if value & !mask != 0 {
                return Ok(None);
            }
        }
        out.push(
            SeccompCondition::new(c.index, len.clone(), c.op.clone(), c.value)
                .map_err(|e| e.to_string())?,
        );
    }
    SeccompRule::new(out).map(Some).map_err(|e| e.to_string())
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
