//! Classic BPF for seccomp: the few instructions rt emits itself, a tiny assembler
//! whose only symbolic jumps are the unconditional ones (`JA` has a 32-bit offset, so
//! it reaches anywhere; every conditional jump rt emits is short by construction), and
//! the adapter that turns seccompiler's output for one syscall into a block that falls
//! through when none of its rules match.
//!
//! Why the adapter: seccompiler compiles a whole filter for one architecture with one
//! "match" and one "mismatch" action. rt needs several actions per filter (and per
//! syscall), several architectures, `SECCOMP_RET_USER_NOTIF` (which seccompiler has no
//! action for) and an ENOSYS stub. So rt asks seccompiler for a one-syscall filter with
//! placeholder actions (match: TRAP, mismatch: ALLOW), drops its architecture check and
//! rewrites its returns: `RET TRAP` becomes `RET <real action>` and `RET ALLOW` becomes
//! a jump past the block. Every instruction keeps its place, so seccompiler's own
//! jump offsets stay right.

use rt_sys::seccomp::SockFilter;
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};

// Opcodes (linux/bpf_common.h): class | operation | source.
/// BPF_LD | BPF_W | BPF_ABS
pub(super) const LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JA
pub(super) const JMP_JA: u16 = 0x05;
pub(super) const JMP_JEQ_K: u16 = 0x05 | 0x10;
pub(super) const JMP_JGT_K: u16 = 0x05 | 0x20;
#[cfg(test)]
pub(super) const JMP_JGE_K: u16 = 0x05 | 0x30;
pub(super) const JMP_JSET_K: u16 = 0x05 | 0x40;
#[cfg(test)]
pub(super) const ALU_AND_K: u16 = 0x04 | 0x50;
/// BPF_RET | BPF_K
pub(super) const RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data`.
pub(super) const DATA_NR: u32 = 0;
pub(super) const DATA_ARCH: u32 = 4;
#[cfg(test)]
pub(super) const DATA_ARGS: u32 = 16;

pub(super) fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(super) fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// A place in the program that `Asm::ja` can jump to (forward only, as BPF wants).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Label(usize);

enum Item {
    Insn(SockFilter),
    Ja(Label),
    Mark(Label),
}

/// A program under construction.
#[derive(Default)]
pub(super) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

impl Asm {
    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    pub(super) fn mark(&mut self, l: Label) {
        self.items.push(Item::Mark(l));
    }

    pub(super) fn push(&mut self, i: SockFilter) {
        self.items.push(Item::Insn(i));
    }

    pub(super) fn extend(&mut self, insns: impl IntoIterator<Item = SockFilter>) {
        self.items.extend(insns.into_iter().map(Item::Insn));
    }

    pub(super) fn ja(&mut self, l: Label) {
        self.items.push(Item::Ja(l));
    }

    /// Resolve the jumps. Panics on a backward jump or an unmarked label: both would
    /// be bugs of the code generator, not of a profile.
    pub(super) fn finish(self) -> Vec<SockFilter> {
        let mut at = vec![None; self.labels];
        let mut pc = 0usize;
        for item in &self.items {
            match item {
                Item::Mark(l) => at[l.0] = Some(pc),
                _ => pc += 1,
            }
        }
        let mut out = Vec::with_capacity(pc);
        for item in self.items {
            match item {
                Item::Insn(i) => out.push(i),
                Item::Ja(l) => {
                    let target = at[l.0].expect("every label is marked");
                    let from = out.len() + 1;
                    assert!(target >= from, "BPF jumps only forward");
                    out.push(stmt(JMP_JA, (target - from) as u32));
                }
                Item::Mark(_) => {}
            }
        }
        out
    }
}

/// `syscall nr in nrs => RET action`, for up to 256 syscalls: one `JEQ` each (the
/// accumulator holds the syscall number), all jumping to one shared `RET`, which
/// the last `JEQ` skips when nothing matched.
pub(super) fn syscall_set(nrs: &[u32], action: u32) -> Vec<SockFilter> {
    let mut out = Vec::with_capacity(nrs.len() + 1);
    for chunk in nrs.chunks(256) {
        let last = chunk.len() - 1;
        for (i, &nr) in chunk.iter().enumerate() {
            if i < last {
                out.push(jump(JMP_JEQ_K, nr, (last - i) as u8, 0));
            } else {
                out.push(jump(JMP_JEQ_K, nr, 0, 1));
            }
        }
        out.push(stmt(RET_K, action));
    }
    out
}

/// seccompiler's placeholders: "a rule matched" and "no rule matched".
const MATCHED: SeccompAction = SeccompAction::Trap;
const NO_MATCH: SeccompAction = SeccompAction::Allow;

/// The block for syscall `nr` with `rules` (any of which may match) and `action`: it
/// starts by loading the syscall number, returns `action` when a rule matches, and
/// otherwise falls through to the next instruction after it (with the accumulator
/// clobbered). Built by seccompiler, see the module comment.
pub(super) fn rule_chain(
    nr: u32,
    rules: Vec<SeccompRule>,
    action: u32,
) -> Result<Vec<SockFilter>, String> {
    // The target only picks the architecture check that we drop below.
    let filter = SeccompFilter::new(
        [(i64::from(nr), rules)].into_iter().collect(),
        NO_MATCH,
        MATCHED,
        TargetArch::x86_64,
    )
    .map_err(|e| e.to_string())?;
    let prog = BpfProgram::try_from(filter).map_err(|e| e.to_string())?;
    adapt(&prog, action)
}

/// Rewrite a one-syscall seccompiler program (see `rule_chain`); a program not of the
/// shape this expects (another seccompiler version) is an error, not a wrong filter.
fn adapt(prog: &[seccompiler::sock_filter], action: u32) -> Result<Vec<SockFilter>, String> {
    let insn = |i: &seccompiler::sock_filter| SockFilter {
        code: i.code,
        jt: i.jt,
        jf: i.jf,
        k: i.k,
    };
    // Its preamble: load the architecture, jump over a kill if it is the target's.
    let preamble = [
        stmt(LD_W_ABS, DATA_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(RET_K, libc::SECCOMP_RET_KILL_PROCESS),
    ];
    let (head, body) = prog.split_at(preamble.len().min(prog.len()));
    if !head.iter().map(insn).eq(preamble)
        || body.first().map(insn) != Some(stmt(LD_W_ABS, DATA_NR))
    {
        return Err("seccompiler's program does not start as rt expects".into());
    }
    let n = body.len();
    let matched = u32::from(MATCHED);
    let no_match = u32::from(NO_MATCH);
    body.iter()
        .enumerate()
        .map(|(i, ins)| match insn(ins) {
            r if r.code == RET_K && r.k == matched => Ok(stmt(RET_K, action)),
            r if r.code == RET_K && r.k == no_match => Ok(stmt(JMP_JA, (n - i - 1) as u32)),
            r if r.code == RET_K => Err(format!(
                "seccompiler returned {:#x}, not a placeholder",
                r.k
            )),
            r => Ok(r),
        })
        .collect()
}

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Run `prog` on one syscall as the kernel would; for the tests, which check what a
/// filter does rather than which instructions it has.
#[cfg(test)]
pub(super) fn run(prog: &[SockFilter], arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&nr.to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, a) in args.iter().enumerate() {
        let at = DATA_ARGS as usize + 8 * i;
        data[at..at + 8].copy_from_slice(&a.to_ne_bytes());
    }
    let word = |k: u32| {
        let k = k as usize;
        assert!(k & 3 == 0 && k + 4 <= data.len(), "load at {k}");
        u32::from_ne_bytes(data[k..k + 4].try_into().unwrap())
    };
    let (mut a, mut pc) = (0u32, 0usize);
    loop {
        let i = prog
            .get(pc)
            .unwrap_or_else(|| panic!("ran off the end at {pc}"));
        pc += 1;
        let cond = |c: bool| if c { i.jt as usize } else { i.jf as usize };
        match i.code {
            LD_W_ABS => a = word(i.k),
            ALU_AND_K => a &= i.k,
            JMP_JA => pc += i.k as usize,
            JMP_JEQ_K => pc += cond(a == i.k),
            JMP_JGT_K => pc += cond(a > i.k),
            JMP_JGE_K => pc += cond(a >= i.k),
            JMP_JSET_K => pc += cond(a & i.k != 0),
            RET_K => return i.k,
            c => panic!("opcode {c:#x} at {}", pc - 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use seccompiler::{SeccompCmpArgLen, SeccompCmpOp, SeccompCondition};

    const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
    const NEXT: u32 = 0xdead;

    /// `block` followed by `RET NEXT`, with the syscall number loaded first.
    fn with_tail(block: Vec<SockFilter>) -> Vec<SockFilter> {
        let mut p = vec![stmt(LD_W_ABS, DATA_NR)];
        p.extend(block);
        p.push(stmt(RET_K, NEXT));
        p
    }

    #[test]
    fn assembler_resolves_forward_jumps() {
        let mut a = Asm::default();
        let end = a.label();
        a.ja(end);
        a.push(stmt(RET_K, 1));
        a.push(stmt(RET_K, 2));
        a.mark(end);
        a.push(stmt(RET_K, 3));
        let p = a.finish();
        assert_eq!(p[0], stmt(JMP_JA, 2));
        assert_eq!(run(&p, 0, 0, [0; 6]), 3);
    }

    #[test]
    fn syscall_set_matches_exactly_its_members() {
        // More than one chunk, so the shared returns and skips are exercised.
        let nrs: Vec<u32> = (0..600).step_by(2).collect();
        let p = with_tail(syscall_set(&nrs, ALLOW));
        for nr in 0..610 {
            let want = if nr % 2 == 0 && nr < 600 { ALLOW } else { NEXT };
            assert_eq!(run(&p, 0, nr, [0; 6]), want, "nr {nr}");
        }
    }

    #[test]
    fn rule_chain_returns_its_action_or_falls_through() {
        let cond = |op, v| SeccompCondition::new(1, SeccompCmpArgLen::Qword, op, v).unwrap();
        let rules = vec![
            SeccompRule::new(vec![cond(SeccompCmpOp::Eq, 7)]).unwrap(),
            SeccompRule::new(vec![cond(SeccompCmpOp::Gt, 1 << 40)]).unwrap(),
        ];
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let chain = rule_chain(42, rules, notify).unwrap();
        // Two chains back to back: the first falls into the second.
        let other = vec![SeccompRule::new(vec![cond(SeccompCmpOp::Eq, 8)]).unwrap()];
        let mut p = chain.clone();
        p.extend(rule_chain(42, other, ALLOW).unwrap());
        let p = with_tail(p);
        assert_eq!(run(&p, 0, 42, [0, 7, 0, 0, 0, 0]), notify);
        assert_eq!(run(&p, 0, 42, [0, (1 << 40) + 1, 0, 0, 0, 0]), notify);
        assert_eq!(run(&p, 0, 42, [0, 8, 0, 0, 0, 0]), ALLOW);
        assert_eq!(run(&p, 0, 42, [0, 9, 0, 0, 0, 0]), NEXT);
        assert_eq!(run(&p, 0, 41, [0, 7, 0, 0, 0, 0]), NEXT);
        // No placeholder survives.
        assert!(!chain
            .iter()
            .any(|i| i.code == RET_K && (i.k == u32::from(MATCHED) || i.k == u32::from(NO_MATCH))));
    }
}
