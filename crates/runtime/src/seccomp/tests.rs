//! The translation, checked by running the compiled filter (`bpf::run`) on syscalls
//! rather than by comparing instructions; and one real load in a child.

use serde_json::{json, Value};

use super::*;

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
const fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

fn profile(v: Value) -> LinuxSeccomp {
    serde_json::from_value(v).expect("a valid LinuxSeccomp")
}

fn compiled(v: Value) -> Program {
    compile(&profile(v)).unwrap_or_else(|e| panic!("compile: {e}"))
}

fn compile_err(v: Value) -> String {
    compile(&profile(v)).expect_err("compile fails").to_string()
}

/// What the filter returns for syscall `name` of `abi` with `args`.
fn ret(p: &Program, abi: Abi, name: &str, args: [u64; 6]) -> u32 {
    let nr = abi
        .syscall(name)
        .unwrap_or_else(|| panic!("{name} on {abi:?}"));
    bpf::run(&p.filter, abi.audit_arch(), nr, args)
}

fn ret0(p: &Program, name: &str) -> u32 {
    ret(p, Abi::X86_64, name, [0; 6])
}

/// A profile allowing everything but `rule` (an entry of `syscalls`).
fn deny(rule: Value) -> Program {
    compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}))
}

#[test]
fn every_operator_on_64_bit_values() {
    let hi = 1u64 << 40;
    let p = |op: &str, value: u64, two: Option<u64>| {
        let mut arg = json!({"index": 1, "value": value, "op": op});
        if let Some(t) = two {
            arg["valueTwo"] = json!(t);
        }
        deny(json!({"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO", "args": [arg]}))
    };
    let at = |p: &Program, v: u64| ret(p, Abi::X86_64, "mkdirat", [0, v, 0, 0, 0, 0]) != ALLOW;
    // (op, value, valueTwo, [(argument, denied)])
    type Case<'a> = (&'a str, u64, Option<u64>, &'a [(u64, bool)]);
    let cases: &[Case] = &[
        (
            "SCMP_CMP_EQ",
            hi + 5,
            None,
            &[(hi + 5, true), (5, false), (hi + 6, false)],
        ),
        (
            "SCMP_CMP_NE",
            hi + 5,
            None,
            &[(hi + 5, false), (5, true), (hi, true)],
        ),
        (
            "SCMP_CMP_LT",
            hi + 5,
            None,
            &[(hi + 4, true), (hi + 5, false), (5, true), (2 * hi, false)],
        ),
        (
            "SCMP_CMP_LE",
            hi + 5,
            None,
            &[(hi + 5, true), (hi + 6, false), (0, true)],
        ),
        (
            "SCMP_CMP_GT",
            hi + 5,
            None,
            &[
                (hi + 6, true),
                (hi + 5, false),
                (u64::MAX, true),
                (6, false),
            ],
        ),
        (
            "SCMP_CMP_GE",
            hi + 5,
            None,
            &[(hi + 5, true), (hi + 4, false), (2 * hi, true)],
        ),
        // (arg & value) == valueTwo
        (
            "SCMP_CMP_MASKED_EQ",
            hi | 0xf0,
            Some(hi | 0x30),
            &[(hi | 0x3f, true), (0x30, false), (hi | 0x70, false)],
        ),
    ];
    for (op, value, two, checks) in cases {
        let prog = p(op, *value, *two);
        for &(arg, denied) in *checks {
            assert_eq!(at(&prog, arg), denied, "{op} {value:#x} on {arg:#x}");
        }
    }
}

#[test]
fn masked_eq_with_a_datum_outside_its_mask_never_matches() {
    let p = deny(json!({"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO",
        "args": [{"index": 0, "value": 0xf, "valueTwo": 0x10, "op": "SCMP_CMP_MASKED_EQ"}]}));
    for v in [0, 0x10, 0x1f, u64::MAX] {
        assert_eq!(ret(&p, Abi::X86_64, "mkdirat", [v, 0, 0, 0, 0, 0]), ALLOW);
    }
}

#[test]
fn conditions_of_a_rule_must_all_hold_but_one_argument_twice_means_either() {
    let p = deny(
        json!({"names": ["socket"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 16, "op": "SCMP_CMP_EQ"},
        {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]}),
    );
    assert_eq!(
        ret(&p, Abi::X86_64, "socket", [16, 3, 9, 0, 0, 0]),
        errno(libc::EPERM)
    );
    assert_eq!(ret(&p, Abi::X86_64, "socket", [16, 3, 8, 0, 0, 0]), ALLOW);
    assert_eq!(ret(&p, Abi::X86_64, "socket", [2, 3, 9, 0, 0, 0]), ALLOW);
    // runc: repeated indexes turn into one rule per condition.
    let p = deny(
        json!({"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}]}),
    );
    for (v, denied) in [(8, true), (9, true), (10, false)] {
        let r = ret(&p, Abi::X86_64, "personality", [v, 0, 0, 0, 0, 0]);
        assert_eq!(r != ALLOW, denied, "personality({v})");
    }
}

#[test]
fn every_action() {
    let cases = [
        (json!({"action": "SCMP_ACT_KILL"}), KILL_THREAD),
        (json!({"action": "SCMP_ACT_KILL_THREAD"}), KILL_THREAD),
        (json!({"action": "SCMP_ACT_KILL_PROCESS"}), KILL_PROCESS),
        (json!({"action": "SCMP_ACT_TRAP"}), libc::SECCOMP_RET_TRAP),
        (json!({"action": "SCMP_ACT_ERRNO"}), errno(libc::EPERM)),
        (
            json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 42}),
            errno(42),
        ),
        (json!({"action": "SCMP_ACT_ERRNO", "errnoRet": 0}), errno(0)),
        (
            json!({"action": "SCMP_ACT_TRACE"}),
            libc::SECCOMP_RET_TRACE | libc::EPERM as u32,
        ),
        (
            json!({"action": "SCMP_ACT_TRACE", "errnoRet": 7}),
            libc::SECCOMP_RET_TRACE | 7,
        ),
        (json!({"action": "SCMP_ACT_LOG"}), libc::SECCOMP_RET_LOG),
        (json!({"action": "SCMP_ACT_ALLOW"}), ALLOW),
    ];
    for (mut rule, want) in cases {
        rule["names"] = json!(["mkdir"]);
        let p = compiled(
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 99,
            "syscalls": [rule, {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}]}),
        );
        assert_eq!(ret0(&p, "mkdir"), want, "{rule}");
        assert_eq!(ret0(&p, "getpid"), ALLOW);
        // (read is below the highest syscall named: no ENOSYS for it)
        assert_eq!(ret0(&p, "read"), errno(99));
        assert!(!p.listener);
    }
    let p = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/x.sock",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(ret0(&p, "mkdir"), libc::SECCOMP_RET_USER_NOTIF);
    assert!(p.listener);
    assert_eq!(p.flags, sys::FILTER_FLAG_NEW_LISTENER);
}

#[test]
fn default_actions() {
    for (default, want) in [
        (json!({"defaultAction": "SCMP_ACT_KILL"}), KILL_THREAD),
        (
            json!({"defaultAction": "SCMP_ACT_KILL_PROCESS"}),
            KILL_PROCESS,
        ),
        (
            json!({"defaultAction": "SCMP_ACT_TRAP"}),
            libc::SECCOMP_RET_TRAP,
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO"}),
            errno(libc::EPERM),
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13}),
            errno(13),
        ),
        (
            json!({"defaultAction": "SCMP_ACT_LOG"}),
            libc::SECCOMP_RET_LOG,
        ),
        (json!({"defaultAction": "SCMP_ACT_ALLOW"}), ALLOW),
    ] {
        let p = compiled(default.clone());
        assert_eq!(ret0(&p, "getpid"), want, "{default}");
    }
}

#[test]
fn different_actions_for_one_syscall_in_profile_order() {
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
         "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}, {"index": 2, "value": 9, "op": "SCMP_CMP_EQ"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 9, "op": "SCMP_CMP_NE"}]},
        {"names": ["socket"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_NE"}]},
        {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}
    ]}));
    let s = |a: [u64; 6]| ret(&p, Abi::X86_64, "socket", a);
    assert_eq!(s([16, 0, 9, 0, 0, 0]), errno(22));
    assert_eq!(s([16, 0, 0, 0, 0, 0]), ALLOW);
    assert_eq!(s([2, 0, 9, 0, 0, 0]), libc::SECCOMP_RET_LOG);
    assert_eq!(s([16, 1, 9, 0, 0, 0]), errno(22));
}

#[test]
fn precedence_as_libseccomp() {
    // An args-less rule beats rules with args, before or after it; the first
    // args-less rule stays; a rule with the default action is dropped.
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["personality", "setns", "mkdir"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["setns"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["mkdir"], "action": "SCMP_ACT_LOG", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]},
        {"names": ["getpid"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["getpid"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]}
    ]}));
    assert_eq!(
        ret(&p, Abi::X86_64, "personality", [8, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(ret0(&p, "setns"), ALLOW);
    assert_eq!(ret0(&p, "mkdir"), ALLOW);
    assert_eq!(ret0(&p, "getpid"), ALLOW);
    assert_eq!(
        ret(&p, Abi::X86_64, "getpid", [1, 0, 0, 0, 0, 0]),
        errno(libc::EPERM)
    );
}

#[test]
fn unknown_syscall_names_are_skipped() {
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall", "mkdir", "arm_fadvise64_64"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]}));
    assert_eq!(ret0(&p, "mkdir"), errno(42));
    assert_eq!(ret0(&p, "rmdir"), ALLOW);
    // Nothing known at all: an empty filter of the default action.
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_syscall"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert_eq!(ret0(&p, "mkdir"), ALLOW);
    assert!(!p.listener, "no notifying rule is left: no listener");
}

#[test]
fn architectures() {
    let rules = json!([{"names": ["mkdir", "arch_prctl", "_llseek"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]);
    // Native only: other ABIs are killed, x32 included.
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}));
    assert_eq!(ret0(&p, "mkdir"), errno(42));
    assert_eq!(ret0(&p, "arch_prctl"), errno(42));
    assert_eq!(ret(&p, Abi::X86, "getpid", [0; 6]), KILL_PROCESS);
    assert_eq!(ret(&p, Abi::X32, "getpid", [0; 6]), KILL_PROCESS);
    assert_eq!(
        bpf::run(&p.filter, Abi::Aarch64.audit_arch(), 34, [0; 6]),
        KILL_PROCESS
    );
    // podman's list for x86_64: each ABI with its own numbers.
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64"],
        "syscalls": rules}));
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        assert_eq!(ret(&p, abi, "mkdir", [0; 6]), errno(42), "{abi:?}");
        assert_eq!(ret(&p, abi, "rmdir", [0; 6]), ALLOW, "{abi:?}");
    }
    assert_eq!(ret(&p, Abi::X86, "_llseek", [0; 6]), errno(42));
    assert_eq!(ret(&p, Abi::X32, "arch_prctl", [0; 6]), errno(42));
    // x86's mkdir is 39, x86_64's getpid: the ABIs do not mix.
    assert_eq!(Abi::X86.syscall("mkdir"), Abi::X86_64.syscall("getpid"));
    assert_eq!(ret0(&p, "getpid"), ALLOW);
}

#[test]
fn arguments_of_32_bit_abis_compare_on_32_bits() {
    let p = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
            "args": [{"index": 0, "value": 0xffff_ffffu64, "op": "SCMP_CMP_EQ"}]}]}),
    );
    assert_ne!(
        ret(&p, Abi::X86, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(ret(&p, Abi::X86, "personality", [8, 0, 0, 0, 0, 0]), ALLOW);
    assert_ne!(
        ret(&p, Abi::X86_64, "personality", [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(
        ret(&p, Abi::X86_64, "personality", [u64::MAX, 0, 0, 0, 0, 0]),
        ALLOW
    );
}

#[test]
fn syscalls_newer_than_the_profile_get_enosys() {
    let rules =
        json!([{"names": ["read", "write", "mkdir", "openat"], "action": "SCMP_ACT_ALLOW"}]);
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": rules,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]}));
    let max = Abi::X86_64.syscall("openat").unwrap();
    let x = |nr| bpf::run(&p.filter, Abi::X86_64.audit_arch(), nr, [0; 6]);
    assert_eq!(x(max), ALLOW);
    assert_eq!(x(max - 1), errno(libc::EPERM), "older, not in the profile");
    assert_eq!(x(max + 1), errno(libc::ENOSYS));
    assert_eq!(x(1000), errno(libc::ENOSYS));
    // Per ABI, with its own highest number (x86's openat is 295, x32's has the bit).
    let x86 = |nr| bpf::run(&p.filter, Abi::X86.audit_arch(), nr, [0; 6]);
    assert_eq!(x86(296), errno(libc::ENOSYS));
    assert_eq!(x86(294), errno(libc::EPERM));
    assert_eq!(x(X32_SYSCALL_BIT | 300), errno(libc::ENOSYS));
    assert_eq!(x(X32_SYSCALL_BIT | 100), errno(libc::EPERM));
    // The highest number counts whatever its rule's action, the default's included.
    let p = compiled(json!({"defaultAction": "SCMP_ACT_KILL", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["openat"], "action": "SCMP_ACT_KILL"}]}));
    assert_eq!(ret0(&p, "openat"), KILL_THREAD);
    assert_eq!(ret0(&p, "close"), KILL_THREAD);
    assert_eq!(
        bpf::run(&p.filter, Abi::X86_64.audit_arch(), max + 1, [0; 6]),
        errno(libc::ENOSYS)
    );
    // Not when the default lets syscalls through, or is ENOSYS already.
    for default in [
        json!({"defaultAction": "SCMP_ACT_ALLOW"}),
        json!({"defaultAction": "SCMP_ACT_LOG"}),
        json!({"defaultAction": "SCMP_ACT_TRACE"}),
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": libc::ENOSYS}),
    ] {
        let mut v = default.clone();
        v["syscalls"] = json!([{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5}]);
        let p = compiled(v);
        assert!(
            !p.filter
                .iter()
                .any(|i| i.code == bpf::RET_K && i.k == errno(libc::ENOSYS))
                || default["defaultErrnoRet"] == json!(libc::ENOSYS),
            "{default}"
        );
        let want = compiled(default.clone());
        assert_eq!(ret0(&p, "mkdir"), ret0(&want, "mkdir"), "{default}");
    }
}

#[test]
fn flags() {
    let p = compiled(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "flags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]}));
    assert_eq!(
        p.flags,
        sys::FILTER_FLAG_LOG | sys::FILTER_FLAG_SPEC_ALLOW | sys::FILTER_FLAG_TSYNC
    );
    let p = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a.sock",
        "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert_eq!(
        p.flags,
        sys::FILTER_FLAG_TSYNC
            | sys::FILTER_FLAG_TSYNC_ESRCH
            | sys::FILTER_FLAG_NEW_LISTENER
            | sys::FILTER_FLAG_WAIT_KILLABLE_RECV
    );
}

#[test]
fn errors_say_which_field() {
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}));
    assert!(e.contains("syscalls[0].args[0].index: 6"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["getpid"], "action": "SCMP_ACT_LOG"},
        {"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]}));
    assert!(
        e.contains("syscalls[1].errnoRet: SCMP_ACT_ALLOW returns no errno"),
        "{e}"
    );
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_KILL", "defaultErrnoRet": 1}));
    assert!(
        e.contains("defaultErrnoRet: SCMP_ACT_KILL returns no errno"),
        "{e}"
    );
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 5000}));
    assert!(e.contains("defaultErrnoRet: 5000 is out of range"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/a"}));
    assert!(e.contains("cannot be the default action"), "{e}");
    let e = compile_err(json!({"defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}));
    assert!(e.contains("listenerPath is not set"), "{e}");
    let e = compile_err(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/a",
        "syscalls": [{"names": ["mkdir", "sendmsg"], "action": "SCMP_ACT_NOTIFY"}]}),
    );
    assert!(
        e.contains("syscalls[0]: SCMP_ACT_NOTIFY cannot be used for sendmsg"),
        "{e}"
    );
}

#[test]
fn a_large_profile_fits() {
    // Every syscall of every x86 ABI, in an allow-list, with a few conditions.
    let mut names: Vec<&str> = syscalls::X86_64.iter().map(|(n, _)| *n).collect();
    names.extend(syscalls::X86.iter().map(|(n, _)| *n));
    names.sort();
    names.dedup();
    let p = compiled(
        json!({"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
            {"names": names, "action": "SCMP_ACT_ALLOW"}]}),
    );
    assert!(p.filter.len() < 1600, "{} instructions", p.filter.len());
    for abi in [Abi::X86_64, Abi::X86, Abi::X32] {
        assert_eq!(ret(&p, abi, "read", [0; 6]), ALLOW);
        assert_eq!(ret(&p, abi, "personality", [0; 6]), ALLOW);
    }
}

#[test]
fn features_lists_what_compile_takes() {
    let f = features();
    assert_eq!(f["enabled"], json!(true));
    assert_eq!(
        f["archs"],
        json!(["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"])
    );
    for a in f["actions"].as_array().unwrap() {
        let mut v = json!({"defaultAction": a, "listenerPath": "/a",
            "syscalls": [{"names": ["mkdir"], "action": a}]});
        if a == "SCMP_ACT_NOTIFY" {
            v["defaultAction"] = json!("SCMP_ACT_ALLOW");
        }
        compile(&profile(v)).unwrap_or_else(|e| panic!("{a}: {e}"));
    }
    for op in f["operators"].as_array().unwrap() {
        compiled(
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"],
            "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": op}]}]}),
        );
    }
    for fl in f["knownFlags"].as_array().unwrap() {
        compiled(json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": [fl]}));
    }
}

/// The compiled program, loaded for real, into a thread of its own (without TSYNC a
/// filter is the calling thread's, and no_new_privs too): mkdir fails there with
/// the profile's errno, and works elsewhere.
#[test]
fn loads_into_a_thread() {
    let dir = tempfile::tempdir().unwrap();
    let p = compiled(
        json!({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 42}]}),
    );
    let inside = dir.path().join("inside");
    let got = std::thread::spawn(move || {
        nix::sys::prctl::set_no_new_privs().unwrap();
        assert_eq!(load(&p).unwrap().map(drop), None);
        std::fs::create_dir(inside).map_err(|e| e.raw_os_error())
    })
    .join()
    .unwrap();
    assert_eq!(got, Err(Some(42)));
    std::fs::create_dir(dir.path().join("outside")).unwrap();
}
