//! `rt-test-syscall NR [ARG...]`: make syscall NR with up to six integer arguments
//! (decimal, or hex with 0x) and print `ret=N` or `errno=N`. The seccomp tests run
//! it inside containers, for syscalls busybox has no applet for.

use std::process::exit;

fn main() {
    let nums: Result<Vec<u64>, String> = std::env::args()
        .skip(1)
        .map(|a| {
            match a.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16),
                None => a.parse(),
            }
            .map_err(|e| format!("{a:?}: {e}"))
        })
        .collect();
    let nums = match nums {
        Ok(n) if !n.is_empty() && n.len() <= 7 => n,
        Ok(_) => {
            eprintln!("usage: rt-test-syscall NR [ARG...] (at most six arguments)");
            exit(2);
        }
        Err(e) => {
            eprintln!("rt-test-syscall: {e}");
            exit(2);
        }
    };
    let mut a = [0u64; 6];
    a[..nums.len() - 1].copy_from_slice(&nums[1..]);
    // SAFETY: the caller picks a syscall whose arguments are plain integers (or null).
    let ret = unsafe { libc::syscall(nums[0] as libc::c_long, a[0], a[1], a[2], a[3], a[4], a[5]) };
    if ret == -1 {
        println!(
            "errno={}",
            std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
        );
    } else {
        println!("ret={ret}");
    }
}
