//! The cgroup v2 device filter as eBPF instructions: a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program the kernel runs on every device open and mknod in the cgroup, returning
//! 1 to allow and 0 to refuse.
//!
//! The program gives the same answer as [`super::devices::allows`]: each requested
//! access (read, write, mknod) is decided separately by the last rule that names it and
//! matches the device, and refused when none does. Checking rules newest first and
//! stopping at the first match is how "the last one wins" becomes straight-line code.

use rt_sys::bpf::Insn;

use super::devices::{Kind, Rule, ACCESS_BITS};

// Opcodes, from include/uapi/linux/bpf_common.h and bpf.h.
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm
const MOV64_K: u8 = 0xb7; // dst = imm
const JA: u8 = 0x05; // goto +off
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const JSET_K: u8 = 0x45; // if dst & imm goto +off
const EXIT: u8 = 0x95; // return r0

const R0: u8 = 0;
const R1: u8 = 1; // the context: struct bpf_cgroup_dev_ctx { u32 access_type, major, minor }
const R2: u8 = 2; // device type (BPF_DEVCG_DEV_*)
const R3: u8 = 3; // requested access (BPF_DEVCG_ACC_*)
const R4: u8 = 4; // major
const R5: u8 = 5; // minor

const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;

/// A jump target, bound to a position once the code there is emitted.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Label(usize);

/// A forward-only assembler: jumps name labels, offsets are filled in at the end.
#[derive(Default)]
struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    /// (index of a jump, where it goes)
    fixups: Vec<(usize, Label)>,
}

impl Asm {
    fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    fn op(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.insns.push(Insn {
            code,
            regs: (src << 4) | dst,
            off,
            imm,
        });
    }

    fn jump(&mut self, code: u8, dst: u8, imm: i32, to: Label) {
        self.fixups.push((self.insns.len(), to));
        self.op(code, dst, 0, 0, imm);
    }

    fn goto(&mut self, to: Label) {
        self.jump(JA, 0, 0, to);
    }

    fn ret(&mut self, value: i32) {
        self.op(MOV64_K, R0, 0, 0, value);
        self.op(EXIT, 0, 0, 0, 0);
    }

    fn is_used(&self, l: Label) -> bool {
        self.fixups.iter().any(|&(_, to)| to == l)
    }

    /// Bind `l` here. A `goto l` just before it would be a jump to the next
    /// instruction; it is dropped, and labels bound after it move back with it (they
    /// meant "whatever comes next", and still do).
    fn bind(&mut self, l: Label) {
        while let Some(last) = self.insns.len().checked_sub(1) {
            match self.fixups.last() {
                Some(&(at, to)) if at == last && to == l && self.insns[last].code == JA => {
                    self.insns.pop();
                    self.fixups.pop();
                    for pos in self.labels.iter_mut().flatten() {
                        *pos = (*pos).min(last);
                    }
                }
                _ => break,
            }
        }
        self.labels[l.0] = Some(self.insns.len());
    }

    fn finish(mut self) -> Vec<Insn> {
        for &(at, to) in &self.fixups {
            let target = self.labels[to.0].expect("every jump target is bound");
            let off = target as i64 - (at as i64 + 1);
            self.insns[at].off = i16::try_from(off).expect("device programs stay small");
        }
        self.insns
    }
}

/// The device filter for `rules` (already in the order they apply).
pub fn program(rules: &[Rule]) -> Vec<Insn> {
    let mut a = Asm::default();
    a.op(LDX_MEM_W, R2, R1, 0, 0);
    a.op(ALU32_AND_K, R2, 0, 0, 0xffff);
    a.op(LDX_MEM_W, R3, R1, 0, 0);
    a.op(ALU32_RSH_K, R3, 0, 0, 16);
    a.op(LDX_MEM_W, R4, R1, 4, 0);
    a.op(LDX_MEM_W, R5, R1, 8, 0);
    let deny = a.label();
    for bit in ACCESS_BITS {
        let next_bit = a.label();
        let check = a.label();
        a.jump(JSET_K, R3, bit as i32, check);
        a.goto(next_bit);
        a.bind(check);
        let verdict = |allow: bool| if allow { next_bit } else { deny };
        let mut decided = false;
        for rule in rules.iter().rev() {
            let kind = match rule.kind {
                // Like the v1 kernel, "a" stands for every device and every access;
                // nothing older than it can matter.
                Kind::All => {
                    a.goto(verdict(rule.allow));
                    decided = true;
                    break;
                }
                _ if rule.access & bit == 0 => continue,
                Kind::Char => DEV_CHAR,
                Kind::Block => DEV_BLOCK,
            };
            let skip = a.label();
            a.jump(JNE_K, R2, kind, skip);
            if let Some(major) = rule.major {
                a.jump(JNE_K, R4, major as i32, skip);
            }
            if let Some(minor) = rule.minor {
                a.jump(JNE_K, R5, minor as i32, skip);
            }
            a.goto(verdict(rule.allow));
            a.bind(skip);
        }
        if !decided {
            a.goto(deny);
        }
        a.bind(next_bit);
    }
    a.ret(1);
    // The verifier refuses unreachable code, so the refusal exists only if used.
    if a.is_used(deny) {
        a.bind(deny);
        a.ret(0);
    }
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::super::devices::{allows, default_rules, ACC_MKNOD, ACC_READ, ACC_WRITE};
    use super::*;

    /// Run `prog` on one request, the way the kernel would, for the opcodes we emit.
    /// Panics on anything the verifier would refuse that this can see: unknown
    /// opcodes, backward or out-of-range jumps, falling off the end.
    fn run(prog: &[Insn], kind: i32, access: u8, major: u32, minor: u32) -> u64 {
        let ctx = [((access as u32) << 16) | kind as u32, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog.get(pc).expect("ran off the end of the program");
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            let mut next = pc + 1;
            let jump = |taken: bool| {
                assert!(i.off >= 0, "backward jump at {pc}");
                let to = pc + 1 + i.off as usize;
                assert!(to < prog.len(), "jump out of the program at {pc}");
                if taken {
                    to
                } else {
                    pc + 1
                }
            };
            match i.code {
                LDX_MEM_W => {
                    assert_eq!(src, R1 as usize);
                    r[dst] = ctx[i.off as usize / 4] as u64;
                }
                ALU32_AND_K => r[dst] = (r[dst] as u32 & i.imm as u32) as u64,
                ALU32_RSH_K => r[dst] = ((r[dst] as u32) >> i.imm) as u64,
                MOV64_K => r[dst] = i.imm as i64 as u64,
                JA => next = jump(true),
                JNE_K => next = jump(r[dst] != i.imm as i64 as u64),
                JSET_K => next = jump(r[dst] & (i.imm as i64 as u64) != 0),
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
            pc = next;
        }
    }

    /// The verifier's "unreachable insn" check: every instruction has a way in.
    fn assert_all_reachable(prog: &[Insn]) {
        let mut seen = vec![false; prog.len()];
        let mut todo = vec![0usize];
        while let Some(pc) = todo.pop() {
            if std::mem::replace(&mut seen[pc], true) {
                continue;
            }
            let i = prog[pc];
            let to = pc + 1 + i.off as usize;
            match i.code {
                EXIT => {}
                JA => todo.push(to),
                JNE_K | JSET_K => todo.extend([pc + 1, to]),
                _ => todo.push(pc + 1),
            }
        }
        let dead: Vec<_> = (0..prog.len()).filter(|&i| !seen[i]).collect();
        assert!(dead.is_empty(), "unreachable instructions {dead:?}");
    }

    fn rule(allow: bool, kind: Kind, major: Option<u32>, minor: Option<u32>, access: u8) -> Rule {
        Rule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    const DEVICES: [(Kind, u32, u32); 6] = [
        (Kind::Char, 1, 3),
        (Kind::Char, 1, 5),
        (Kind::Char, 136, 7),
        (Kind::Char, 10, 200),
        (Kind::Block, 8, 0),
        (Kind::Block, 1, 3),
    ];

    /// The program and the reference semantics agree on every device and access mix.
    fn agrees(rules: &[Rule]) {
        let prog = program(rules);
        assert_all_reachable(&prog);
        for (kind, major, minor) in DEVICES {
            let code = if kind == Kind::Char {
                DEV_CHAR
            } else {
                DEV_BLOCK
            };
            for access in 1..=7u8 {
                let want = allows(rules, kind, major, minor, access);
                let got = run(&prog, code, access, major, minor) == 1;
                assert_eq!(
                    got, want,
                    "{kind:?} {major}:{minor} access {access:#b} with {rules:?}"
                );
            }
        }
    }

    #[test]
    fn empty_rules_deny_everything() {
        let prog = program(&[]);
        assert_all_reachable(&prog);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 3), 0);
        agrees(&[]);
    }

    #[test]
    fn allow_all_has_no_refusal_block() {
        let prog = program(&[rule(true, Kind::All, None, None, 7)]);
        assert_all_reachable(&prog);
        assert!(prog.iter().all(|i| !(i.code == MOV64_K && i.imm == 0)));
        assert_eq!(run(&prog, DEV_BLOCK, ACC_WRITE, 8, 0), 1);
    }

    #[test]
    fn defaults_allow_what_runc_allows() {
        let rules: Vec<Rule> = std::iter::once(rule(false, Kind::All, None, None, 7))
            .chain(default_rules())
            .collect();
        let prog = program(&rules);
        let rw = ACC_READ | ACC_WRITE;
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 3), 1); // /dev/null
        assert_eq!(run(&prog, DEV_CHAR, rw, 136, 4), 1); // a pty
        assert_eq!(run(&prog, DEV_CHAR, ACC_MKNOD, 4, 1), 1); // mknod anything
        assert_eq!(run(&prog, DEV_BLOCK, ACC_READ, 8, 0), 0); // no disks
        assert_eq!(run(&prog, DEV_CHAR, rw, 1, 1), 0); // no /dev/mem
        agrees(&rules);
    }

    #[test]
    fn accesses_are_decided_separately() {
        // Two partial allows add up, as v1's merged exceptions do.
        agrees(&[
            rule(false, Kind::All, None, None, 7),
            rule(true, Kind::Char, Some(1), Some(3), ACC_READ),
            rule(true, Kind::Char, Some(1), Some(3), ACC_WRITE),
        ]);
        // A partial deny refuses a request that includes it.
        let rules = [
            rule(true, Kind::All, None, None, 7),
            rule(false, Kind::Char, Some(1), Some(3), ACC_WRITE),
        ];
        let prog = program(&rules);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ, 1, 3), 1);
        assert_eq!(run(&prog, DEV_CHAR, ACC_READ | ACC_WRITE, 1, 3), 0);
        agrees(&rules);
    }

    #[test]
    fn last_matching_rule_wins() {
        agrees(&[
            rule(false, Kind::All, None, None, 7),
            rule(true, Kind::Char, None, None, 7),
            rule(false, Kind::Char, Some(1), None, ACC_READ),
            rule(true, Kind::Char, Some(1), Some(5), ACC_READ),
        ]);
        // An "a" rule resets what came before it.
        agrees(&[
            rule(true, Kind::Char, Some(1), Some(3), 7),
            rule(false, Kind::All, None, None, ACC_READ),
            rule(true, Kind::Block, None, Some(0), ACC_MKNOD),
        ]);
    }

    #[test]
    fn random_rule_sets_agree() {
        // A small LCG keeps this deterministic without a dependency.
        let mut seed = 0x2545f4914f6cdd1du64;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let pick = |v: u64, choices: &[Option<u32>]| choices[v as usize];
        for _ in 0..500 {
            let n = next(6);
            let rules: Vec<Rule> = (0..n)
                .map(|_| {
                    let kind = [Kind::All, Kind::Char, Kind::Char, Kind::Block][next(4) as usize];
                    rule(
                        next(2) == 1,
                        kind,
                        pick(next(4), &[None, Some(1), Some(8), Some(136)]),
                        pick(next(4), &[None, Some(3), Some(0), Some(7)]),
                        1 + next(7) as u8,
                    )
                })
                .collect();
            agrees(&rules);
        }
    }
}
