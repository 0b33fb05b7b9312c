//! Real builds: a busybox base made from `FROM scratch` + `ADD rootfs.tar /`,
//! RUN steps run by rt, the results unpacked by rt-unpack and run by rt.

mod common;

use std::time::Instant;

use common::*;

const BASE: &str = "FROM scratch\nADD rootfs.tar /\n";

#[test]
fn layers_whiteouts_opaque_dirs_and_config() {
    if !ready("layers_whiteouts_opaque_dirs_and_config") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!(
        "{BASE}ENV GREETING=hello\n\
         RUN echo \"$GREETING from $(id -u)\" > /etc/greeting && rm /etc/base.txt\n\
         RUN rm -rf /opt/dir && mkdir /opt/dir && echo c > /opt/dir/c\n\
         RUN echo changed > /etc/passwd.extra && ln /etc/greeting /etc/hardlink\n\
         RUN true\n\
         LABEL org.example.k=v\nEXPOSE 8080 53/udp\nVOLUME /data\nSTOPSIGNAL SIGTERM\n\
         CMD [\"cat\", \"/etc/greeting\"]\n"
    ));
    e.build_ok(&["-t", "t1"]);
    e.assert_clean();
    let (_d, root) = e.tree("t1");
    assert_eq!(read(&root, "etc/greeting"), "hello from 0\n");
    assert!(
        !exists(&root, "etc/base.txt"),
        "a deleted base file is whited out"
    );
    assert!(exists(&root, "etc/passwd"));
    assert!(
        !exists(&root, "opt/dir/a") && !exists(&root, "opt/dir/b"),
        "opaque dir hides the base's"
    );
    assert_eq!(read(&root, "opt/dir/c"), "c\n");
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(root.join("etc/greeting")).unwrap();
    let b = std::fs::metadata(root.join("etc/hardlink")).unwrap();
    assert_eq!(a.ino(), b.ino(), "hardlinks stay hardlinks");

    let cfg = e.inspect("t1");
    let c = &cfg["config"];
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "GREETING=hello"
        ])
    );
    assert_eq!(c["Cmd"], serde_json::json!(["cat", "/etc/greeting"]));
    assert_eq!(c["Labels"]["org.example.k"], "v");
    assert!(c["ExposedPorts"]["8080/tcp"].is_object());
    assert!(c["ExposedPorts"]["53/udp"].is_object());
    assert!(c["Volumes"]["/data"].is_object());
    assert_eq!(c["StopSignal"], "SIGTERM");
    // ADD + 3 RUNs that change files; `RUN true` and the config steps none.
    let diff_ids = cfg["rootfs"]["diff_ids"].as_array().unwrap().len();
    assert_eq!(diff_ids, 4);
    let hist = cfg["history"].as_array().unwrap();
    let non_empty = hist.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(non_empty, diff_ids, "history matches layers: {hist:?}");
    let run_true = hist
        .iter()
        .find(|h| h["created_by"] == "/bin/sh -c true")
        .unwrap();
    assert_eq!(run_true["empty_layer"], true);

    let (code, out, err) = e.run("t1", &[]);
    assert_eq!((code, out.as_str()), (0, "hello from 0\n"), "{err}");
}

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    if !ready("multi_stage_builds_only_what_the_target_needs") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!(
        "{BASE}\nFROM 0 AS build\nRUN mkdir /out && echo built > /out/artifact && echo x > /out/other\n\
         FROM 0 AS unused\nRUN echo must not run; exit 1\n\
         FROM scratch AS final\nCOPY --from=build /out/artifact /artifact\nCOPY --from=0 /bin/busybox /bin/\n\
         FROM final AS last\nRUN false\n"
    ));
    let out = e.build_ok(&["--target", "final", "-t", "ms"]);
    assert!(!out.contains("must not run"), "{out}");
    assert!(!out.contains("RUN false"), "{out}");
    let (_d, root) = e.tree("ms");
    assert_eq!(read(&root, "artifact"), "built\n");
    assert!(exists(&root, "bin/busybox"));
    assert!(!exists(&root, "other") && !exists(&root, "etc"));
    let (code, out, err) = e.run("ms", &["/bin/busybox", "cat", "/artifact"]);
    assert_eq!((code, out.as_str()), (0, "built\n"), "{err}");
    // an unknown target is a clear error
    let out = e.build(&["--target", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--target nope"));
}

#[test]
fn args_env_and_expansion() {
    if !ready("args_env_and_expansion") {
        return;
    }
    let e = Env::new();
    e.dockerfile(
        "ARG BASE_STAGE=base\nARG GLOBAL=g\nFROM scratch AS base\nADD rootfs.tar /\n\
         FROM ${BASE_STAGE}\nARG GLOBAL\nARG A=default\nARG B\nARG UNSET\nENV E1=${A}-env P=${UNSET:-fallback} Q=${A:+alt}\n\
         ENV A=env-wins\nRUN echo \"$GLOBAL $A $B $E1 $P $Q ${UNSET:-x}\" > /args\n\
         WORKDIR /w/${GLOBAL}\nRUN pwd > /pwd\nLABEL l=\"$B\"\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n",
    );
    e.build_ok(&["--build-arg", "B=from-cli", "-t", "args"]);
    let (_d, root) = e.tree("args");
    assert_eq!(
        read(&root, "args"),
        "g env-wins from-cli default-env fallback alt x\n"
    );
    assert_eq!(read(&root, "pwd"), "/w/g\n");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert_eq!(
        read(&root, "arch"),
        format!("{arch}\n"),
        "BuildKit's automatic platform args"
    );
    let cfg = e.inspect("args");
    assert_eq!(cfg["config"]["Labels"]["l"], "from-cli");
    let env = cfg["config"]["Env"].as_array().unwrap();
    assert!(
        !env.iter().any(|v| v.as_str().unwrap().starts_with("B=")),
        "ARGs stay out of the image: {env:?}"
    );
    // a changed build arg misses the cache for the RUN that sees it
    let out = e.build_ok(&["--build-arg", "B=other", "-t", "args"]);
    assert!(out.contains("Using cache"), "{out}");
    let (_d, root) = e.tree("args");
    assert!(read(&root, "args").contains("other"));
}

#[test]
fn user_workdir_chown_chmod() {
    if !ready("user_workdir_chown_chmod") {
        return;
    }
    let e = Env::new();
    e.write("f.txt", "data\n");
    e.write("dir/sub/g.txt", "g\n");
    e.dockerfile(&format!(
        "{BASE}WORKDIR /app\nWORKDIR sub\nCOPY --chown=bob:staff --chmod=600 f.txt .\n\
         COPY --chown=1000 dir /app/dir/\nUSER bob\nRUN id -u > /tmp/uid && id -g > /tmp/gid && pwd > /tmp/pwd && echo $HOME > /tmp/home && touch /home/bob/mine\n\
         USER 0:0\n"
    ));
    e.build_ok(&["-t", "u"]);
    let (_d, root) = e.tree("u");
    let t = list_tree(&root);
    assert_eq!(t["app/sub/f.txt"], "file \"data\\n\" 600 1000:50");
    assert_eq!(t["app/dir/sub/g.txt"], "file \"g\\n\" 644 1000:1000");
    assert_eq!(read(&root, "tmp/uid"), "1000\n");
    assert_eq!(read(&root, "tmp/gid"), "1000\n");
    assert_eq!(read(&root, "tmp/pwd"), "/app/sub\n");
    assert_eq!(read(&root, "tmp/home"), "/home/bob\n");
    assert!(t["home/bob/mine"].ends_with("1000:1000"));
    let cfg = e.inspect("u");
    assert_eq!(cfg["config"]["WorkingDir"], "/app/sub");
    assert_eq!(cfg["config"]["User"], "0:0");
}

#[test]
fn heredocs_run_and_copy() {
    if !ready("heredocs_run_and_copy") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!(
        "{BASE}RUN <<EOF\nset -e\necho one > /h1\necho two >> /h1\nEOF\n\
         RUN cat > /h2 <<'END'\nkept $HOME\nEND\n\
         ARG WHO=world\nCOPY <<EOF /etc/motd\nhello \"$WHO\"\nEOF\nCOPY <<'EOF' /etc/raw\n$WHO\nEOF\n\
         RUN <<EOF\n#!/bin/busybox sh\necho \"script $0\" > /h3\nEOF\n"
    ));
    e.build_ok(&["-t", "h"]);
    let (_d, root) = e.tree("h");
    assert_eq!(read(&root, "h1"), "one\ntwo\n");
    assert_eq!(read(&root, "h2"), "kept $HOME\n");
    assert_eq!(read(&root, "etc/motd"), "hello \"world\"\n");
    assert_eq!(read(&root, "etc/raw"), "$WHO\n");
    assert_eq!(read(&root, "h3"), "script /dev/pipes/EOF\n");
    assert!(!exists(&root, "dev/pipes"));
}

#[test]
fn cache_hits_and_misses() {
    if !ready("cache_hits_and_misses") {
        return;
    }
    let e = Env::new();
    e.write("a.txt", "a1\n");
    e.write("b.txt", "b1\n");
    e.dockerfile(&format!(
        "{BASE}RUN echo one > /one\nRUN echo two > /two\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy-of-a\n\
         RUN echo three > /three\nCOPY b.txt /b.txt\n"
    ));
    let first = e.build_ok(&["-t", "c"]);
    assert!(!first.contains("Using cache"));
    let t0 = Instant::now();
    let second = e.build_ok(&["-t", "c"]);
    let took = t0.elapsed();
    assert_eq!(second.matches("Using cache").count(), 7, "{second}");
    assert!(took.as_secs_f64() < 0.5, "unchanged rebuild took {took:?}");
    assert_eq!(first.lines().last(), second.lines().last(), "same image ID");

    e.write("a.txt", "a2\n");
    let third = e.build_ok(&["-t", "c"]);
    // ADD and two RUNs cached; from COPY a.txt on, rebuilt
    assert_eq!(third.matches("Using cache").count(), 3, "{third}");
    let (_d, root) = e.tree("c");
    assert_eq!(read(&root, "copy-of-a"), "a2\n");

    let nocache = e.build_ok(&["--no-cache", "-t", "c"]);
    assert!(!nocache.contains("Using cache"));
}

#[test]
fn failing_step_names_step_command_and_code() {
    if !ready("failing_step_names_step_command_and_code") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!(
        "{BASE}RUN echo before\nRUN echo partial > /p; exit 3\nRUN echo never\n"
    ));
    let out = e.build(&["-t", "f"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(err.contains("step 4/5"), "{err}");
    assert!(err.contains("Dockerfile:4"), "{err}");
    assert!(err.contains("echo partial > /p; exit 3"), "{err}");
    assert!(err.contains("exit code 3"), "{err}");
    assert!(!stdout.contains("never"));
    e.assert_clean();
    // a malformed Dockerfile: file, line and reason
    e.dockerfile("FROM scratch\nBOGUS x\n");
    let out = e.build(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Dockerfile:2: unknown instruction BOGUS"),
        "{err}"
    );
}

#[test]
fn run_mounts_bind_cache_tmpfs() {
    if !ready("run_mounts_bind_cache_tmpfs") {
        return;
    }
    let e = Env::new();
    e.write("src/input.txt", "from context\n");
    e.dockerfile(&format!(
        "{BASE}RUN --mount=type=bind,source=src,target=/mnt/src cat /mnt/src/input.txt > /bound && (touch /mnt/src/x 2>/dev/null && echo writable || echo readonly) >> /bound\n\
         RUN --mount=type=bind,source=src,target=/mnt/rw,rw touch /mnt/rw/scratch && ls /mnt/rw > /rw-list\n\
         RUN --mount=type=cache,target=/var/cache/c,id=c1 echo $$ >> /var/cache/c/log && wc -l < /var/cache/c/log > /cache-count\n\
         RUN --mount=type=tmpfs,target=/var/empty/t echo tmp > /var/empty/t/f && cat /var/empty/t/f > /tmpfs-saw\n\
         FROM scratch AS other\nCOPY src/input.txt /data/in\nFROM 0\n\
         RUN --mount=type=bind,from=other,source=/data,target=/mnt/other cat /mnt/other/in > /from-stage\n"
    ));
    e.build_ok(&["-t", "m"]);
    e.assert_clean();
    let (_d, root) = e.tree("m");
    assert_eq!(read(&root, "bound"), "from context\nreadonly\n");
    assert_eq!(read(&root, "rw-list"), "input.txt\nscratch\n");
    assert!(
        !e.ctx.join("src/scratch").exists(),
        "rw bind writes are thrown away"
    );
    assert_eq!(read(&root, "cache-count").trim(), "1");
    assert!(
        !exists(&root, "mnt/src") && !exists(&root, "var/cache/c/log"),
        "mount points and contents stay out"
    );
    assert!(!exists(&root, "var/empty/t/f"));
    assert_eq!(read(&root, "tmpfs-saw"), "tmp\n");
    assert_eq!(read(&root, "from-stage"), "from context\n");
    // the cache mount outlives the build
    e.build_ok(&["--no-cache", "-t", "m"]);
    let (_d, root) = e.tree("m");
    assert_eq!(read(&root, "cache-count").trim(), "2");

    // A cache with from= starts as a copy of that stage's directory, and then
    // lives on as any cache while the stage's content stays the same.
    let seeded = |extra: &str| {
        format!(
            "FROM scratch AS seed\nCOPY src/input.txt /data/in\n{BASE}\
             RUN --mount=type=cache,target=/seeded,id=s1,from=seed,source=/data cat /seeded/in > /cache-seeded && echo again >> /seeded/in{extra}\n"
        )
    };
    e.dockerfile(&seeded(""));
    e.build_ok(&["-t", "s"]);
    let (_d, root) = e.tree("s");
    assert_eq!(read(&root, "cache-seeded"), "from context\n");
    assert!(!exists(&root, "seeded/in"));
    e.dockerfile(&seeded(" && true"));
    e.build_ok(&["-t", "s"]);
    let (_d, root) = e.tree("s");
    assert_eq!(read(&root, "cache-seeded"), "from context\nagain\n");
    e.assert_clean();
}

#[test]
fn outputs_and_store_verbs() {
    if !ready("outputs_and_store_verbs") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!(
        "{BASE}RUN echo out > /out\nCMD [\"cat\", \"/out\"]\n"
    ));
    let d = e.dir.path();
    let oci = format!("oci:{}:v1", d.join("layout").display());
    let oa = format!("oci-archive:{}", d.join("img.oci.tar").display());
    let da = format!("docker-archive:{}", d.join("img.docker.tar").display());
    e.build_ok(&[
        "-t", "o", "--output", &oci, "--output", &oa, "--output", &da,
    ]);
    for src in [oci.clone(), format!("{oa}:o:latest"), da.clone()] {
        let bundle = d.join(rand_name());
        let out = std::process::Command::new(sibling("rt-unpack"))
            .arg(&src)
            .arg(&bundle)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(read(&bundle.join("rootfs"), "out"), "out\n");
        std::fs::remove_dir_all(&bundle).unwrap();
    }
    let images = e.cmd().arg("images").output().unwrap();
    assert!(String::from_utf8_lossy(&images.stdout).contains("o:latest"));
    assert!(e
        .cmd()
        .args(["tag", "o", "o2:x"])
        .status()
        .unwrap()
        .success());
    assert!(e.cmd().args(["rmi", "o"]).status().unwrap().success());
    assert_eq!(e.run("o2:x", &[]).1, "out\n");
    let loaded = e
        .cmd()
        .args(["load", &da, "-t", "loaded"])
        .output()
        .unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert_eq!(e.run("loaded", &[]).1, "out\n");
    // without -t, the archive's own name (o was untagged above)
    let loaded = e.cmd().args(["load", &da]).output().unwrap();
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert_eq!(e.run("o", &[]).1, "out\n");
    // FROM an oci: layout and a docker-archive
    for (i, base) in [oci.clone(), format!("{oa}:o:latest"), da.clone()]
        .iter()
        .enumerate()
    {
        e.dockerfile(&format!("FROM {base}\nRUN cat /out > /again\n"));
        let tag = format!("from-{i}");
        e.build_ok(&["-t", &tag]);
        assert_eq!(e.run(&tag, &["cat", "/again"]).1, "out\n", "{base}");
    }
}

#[test]
fn onbuild_and_healthcheck_are_recorded_and_triggered() {
    if !ready("onbuild_and_healthcheck_are_recorded_and_triggered") {
        return;
    }
    let e = Env::new();
    e.dockerfile(&format!(
        "{BASE}ONBUILD RUN echo triggered > /onbuild\nHEALTHCHECK --interval=5s CMD true\nSHELL [\"/bin/sh\", \"-e\", \"-c\"]\nMAINTAINER someone\n"
    ));
    e.build_ok(&["-t", "parent"]);
    let cfg = e.inspect("parent");
    assert_eq!(cfg["config"]["OnBuild"][0], "RUN echo triggered > /onbuild");
    assert_eq!(
        cfg["config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "true"])
    );
    assert_eq!(cfg["config"]["Healthcheck"]["Interval"], 5_000_000_000u64);
    assert_eq!(cfg["author"], "someone");
    e.dockerfile("FROM parent\nRUN test -f /onbuild\n");
    e.build_ok(&["-t", "child"]);
    assert!(e.inspect("child")["config"].get("OnBuild").is_none());
}

#[test]
fn working_container_verbs() {
    if !ready("working_container_verbs") {
        return;
    }
    let e = Env::new();
    e.dockerfile(BASE);
    e.build_ok(&["-t", "base"]);
    let ok = |args: &[&str]| -> String {
        let out = e.cmd().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let c = ok(&["from", "base", "--name", "wc"]).trim().to_owned();
    assert_eq!(c, "wc");
    ok(&[
        "run",
        "wc",
        "--",
        "sh",
        "-c",
        "echo step1 > /s1 && rm /etc/base.txt",
    ]);
    let host = e.dir.path().join("host.txt");
    std::fs::write(&host, "from host\n").unwrap();
    ok(&["copy", "wc", host.to_str().unwrap(), "/etc/"]);
    ok(&[
        "config",
        "wc",
        "--env",
        "K=V",
        "--cmd",
        "[\"cat\", \"/s1\"]",
        "--label",
        "l=1",
        "--port",
        "80",
        "--workingdir",
        "/etc",
    ]);
    let mounted = ok(&["mount", "wc"]);
    assert_eq!(read(std::path::Path::new(mounted.trim()), "s1"), "step1\n");
    assert!(ok(&["containers"]).contains("wc"));
    ok(&["commit", "wc", "imp:1"]);
    // the container goes on from the committed image
    ok(&["run", "wc", "--", "sh", "-c", "echo step2 > /s2"]);
    ok(&["commit", "wc", "imp:2"]);
    ok(&["rm", "wc"]);
    assert!(!ok(&["containers"]).contains("wc"));
    e.assert_clean();
    let (_d, root) = e.tree("imp:1");
    assert_eq!(read(&root, "etc/host.txt"), "from host\n");
    assert!(!exists(&root, "etc/base.txt") && !exists(&root, "s2"));
    let (_d2, root2) = e.tree("imp:2");
    assert_eq!(read(&root2, "s2"), "step2\n");
    let cfg = e.inspect("imp:1");
    assert_eq!(cfg["config"]["WorkingDir"], "/etc");
    assert_eq!(cfg["config"]["Labels"]["l"], "1");
    assert_eq!(e.run("imp:2", &[]).1, "step1\n");
}

#[test]
fn many_layers_fit_one_overlay() {
    if !ready("many_layers_fit_one_overlay") {
        return;
    }
    let e = Env::new();
    let mut df = BASE.to_owned();
    for i in 0..60 {
        df.push_str(&format!("RUN echo {i} > /f{i}\n"));
    }
    df.push_str("RUN cat /f0 /f59 > /both\n");
    e.dockerfile(&df);
    e.build_ok(&["-t", "many"]);
    let cfg = e.inspect("many");
    assert_eq!(cfg["rootfs"]["diff_ids"].as_array().unwrap().len(), 62);
    let (_d, root) = e.tree("many");
    assert_eq!(read(&root, "both"), "0\n59\n");
}

#[test]
fn from_errors_are_clear() {
    if !ready("from_errors_are_clear") {
        return;
    }
    let e = Env::new();
    let other = if std::env::consts::ARCH == "aarch64" {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    e.dockerfile(&format!("FROM --platform={other} scratch\n"));
    let out = e.build(&[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("Dockerfile:1: --platform=") && err.contains("this machine builds for"),
        "{err}"
    );
    e.dockerfile("FROM scratch\nCOPY missing.txt /\n");
    let err = String::from_utf8_lossy(&e.build(&[]).stderr).into_owned();
    assert!(
        err.contains("Dockerfile:2: COPY: missing.txt: no such file"),
        "{err}"
    );
    e.dockerfile("FROM no-such-image\n");
    let err = String::from_utf8_lossy(&e.build(&[]).stderr).into_owned();
    assert!(
        err.contains("Dockerfile:1: FROM no-such-image: no image \"no-such-image:latest\""),
        "{err}"
    );
}

#[test]
fn dockerignore_with_exceptions() {
    if !ready("dockerignore_with_exceptions") {
        return;
    }
    let e = Env::new();
    for f in [
        "a.log",
        "keep.log",
        "dir/x",
        "dir/keep",
        "src/main.rs",
        "src/tmp/t.tmp",
    ] {
        e.write(f, f);
    }
    e.write(
        ".dockerignore",
        "*.log\n!keep.log\ndir\n!dir/keep\n**/*.tmp\n",
    );
    e.dockerfile(&format!("{BASE}COPY . /c/\nCOPY dir /d/\n"));
    e.build_ok(&["-t", "ig"]);
    let (_d, root) = e.tree("ig");
    for f in [
        "c/keep.log",
        "c/dir/keep",
        "c/src/main.rs",
        "c/Dockerfile",
        "d/keep",
    ] {
        assert!(exists(&root, f), "{f} should be copied");
    }
    for f in ["c/a.log", "c/dir/x", "c/src/tmp/t.tmp", "d/x"] {
        assert!(!exists(&root, f), "{f} should be ignored");
    }
    // an ignored file changing does not miss the cache
    e.write("a.log", "changed");
    let out = e.build_ok(&["-t", "ig"]);
    assert_eq!(out.matches("Using cache").count(), 3, "{out}");
}

#[test]
fn source_date_epoch_gives_identical_layers() {
    if !ready("source_date_epoch_gives_identical_layers") {
        return;
    }
    let e = Env::new();
    e.write("f.txt", "f\n");
    e.dockerfile(&format!(
        "{BASE}RUN mkdir -p /a/b && echo x > /a/b/x && ln /a/b/x /a/hard && rm /etc/base.txt && rm -rf /opt/dir && mkdir /opt/dir\n\
         COPY f.txt /a/\nWORKDIR /w\n"
    ));
    let build = || {
        let out = e
            .cmd()
            .args(["build", "-q", "--no-cache", "-t", "r"])
            .arg(&e.ctx)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg = e.inspect("r");
        assert_eq!(cfg["created"], "2023-11-14T22:13:20Z");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let first = build();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let second = build();
    assert_eq!(first, second, "the same build gives the same image ID");
}
