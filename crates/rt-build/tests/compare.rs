//! The same Dockerfile built by rt-build and by `buildah bud` gives the
//! same root filesystem tree and config; rt-build's images run under podman.

mod common;

use std::process::Command;

use common::*;

const DOCKERFILE: &str = "ARG WHO=builder\n\
FROM scratch AS base\nADD rootfs.tar /\n\
FROM base AS build\nARG WHO\nRUN mkdir -p /out/sub && echo \"built by $WHO\" > /out/sub/artifact && ln -s sub/artifact /out/link\n\
FROM base\nARG WHO\nENV GREETING=hello APP=/app\n\
RUN echo \"$GREETING\" > /etc/greeting && rm /etc/base.txt && ln /etc/greeting /etc/greeting.hard\n\
RUN rm -rf /opt/dir && mkdir /opt/dir && echo c > /opt/dir/c && chmod 0750 /opt/dir && chown 1000:50 /opt/dir/c\n\
WORKDIR $APP\nCOPY f.txt dir ./\nCOPY --chown=bob:staff --chmod=640 f.txt /app/owned.txt\n\
COPY --from=build /out /app/out/\nUSER bob\nRUN touch /home/bob/made-by-bob\n\
LABEL org.example.who=$WHO\nEXPOSE 8080/tcp\nVOLUME /data\nSTOPSIGNAL SIGINT\n\
ENTRYPOINT [\"/bin/sh\", \"-c\"]\nCMD [\"cat /etc/greeting\"]\n";

fn setup(e: &Env) {
    e.write("f.txt", "file\n");
    e.write("dir/nested/n.txt", "nested\n");
    e.write("dir/top.txt", "top\n");
    e.dockerfile(DOCKERFILE);
}

fn config_fields(c: &serde_json::Value) -> serde_json::Value {
    let mut c = c["config"].clone();
    if let Some(l) = c.get_mut("Labels").and_then(|l| l.as_object_mut()) {
        l.remove("io.buildah.version");
    }
    if c["Labels"] == serde_json::json!({}) {
        c.as_object_mut().unwrap().remove("Labels");
    }
    c
}

/// Builds the context of `e` with both builders and compares the trees and
/// configs.
fn compare_with_buildah(e: &Env, buildah: &std::path::Path, args: &[&str]) {
    let mut ours_args = args.to_vec();
    ours_args.extend(["-t", "cmp"]);
    e.build_ok(&ours_args);
    let name = format!("localhost/rt-build-cmp-{}", rand_name());
    // buildah's RUN steps by rt too: its default runtime may be crun, which
    // refuses this machine's hybrid cgroup layout.
    let out = Command::new(buildah)
        .args(["bud", "--layers=false", "-q", "--runtime"])
        .arg(sibling("rt"))
        .args(args)
        .args(["-t", &name])
        .arg(&e.ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah bud: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layout = e.dir.path().join(format!("buildah-oci-{}", rand_name()));
    let out = Command::new(buildah)
        .args(["push", &name])
        .arg(format!("oci:{}:cmp", layout.display()))
        .output()
        .unwrap();
    let _ = Command::new(buildah).args(["rmi", &name]).output();
    assert!(
        out.status.success(),
        "buildah push: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_a, ours) = e.tree("cmp");
    let theirs_dir = tempfile::tempdir().unwrap();
    let bundle = theirs_dir.path().join("b");
    let out = Command::new(sibling("rt-unpack"))
        .arg(format!("oci:{}:cmp", layout.display()))
        .arg(&bundle)
        .args(["--", "true"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (t_ours, t_theirs) = (list_tree(&ours), list_tree(&bundle.join("rootfs")));
    for (k, v) in &t_theirs {
        assert_eq!(t_ours.get(k), Some(v), "{k} differs");
    }
    for k in t_ours.keys() {
        assert!(t_theirs.contains_key(k), "{k} only in rt-build's image");
    }

    let ours_cfg = e.inspect("cmp");
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |d: &str| -> serde_json::Value {
        let hex = d.strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let manifest = blob(idx["manifests"][0]["digest"].as_str().unwrap());
    let theirs_cfg = blob(manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config_fields(&ours_cfg), config_fields(&theirs_cfg));
}

#[test]
fn same_tree_and_config_as_buildah() {
    let test = "same_tree_and_config_as_buildah";
    if !ready(test) {
        return;
    }
    let Some(buildah) = tool(test, "buildah") else {
        return;
    };
    let e = Env::new();
    setup(&e);
    compare_with_buildah(&e, &buildah, &["--build-arg", "WHO=tests"]);
}

#[test]
fn more_dockerfiles_match_buildah() {
    let test = "more_dockerfiles_match_buildah";
    if !ready(test) {
        return;
    }
    let Some(buildah) = tool(test, "buildah") else {
        return;
    };
    let e = Env::new();
    e.write("sub/x", "x\n");
    e.write("sub/deep/y", "y\n");
    e.write("ignored.log", "ignored\n");
    e.write(".dockerignore", "*.log\n");
    e.write("a.txt", "a\n");
    e.write("b.txt", "b\n");
    std::os::unix::fs::symlink("sub/x", e.ctx.join("linkx")).unwrap();
    std::fs::hard_link(e.ctx.join("a.txt"), e.ctx.join("a-hard.txt")).unwrap();
    // a gzip tar for ADD
    {
        let f = std::fs::File::create(e.ctx.join("arch.tar.gz")).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::default());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_ustar();
        h.set_path("d/t").unwrap();
        h.set_size(2);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append(&h, &b"t\n"[..]).unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    for df in [
        // mounts, COPY --from with owners, the whole context, ADD archives,
        // USER and the WORKDIR it creates, VOLUME, shell-form ENTRYPOINT
        "FROM scratch AS base\nADD rootfs.tar /\n\
         RUN mkdir -p /srv && chown 1000:1000 /srv && echo s > /srv/s && chown 1000:50 /srv/s\n\
         FROM base\nCOPY --from=0 /srv /copied-srv\nCOPY . /ctx/\nADD arch.tar.gz /extract/\n\
         USER bob\nWORKDIR /home/bob/work\n\
         RUN --mount=type=tmpfs,target=/scratchpad/t echo hi > /home/bob/work/hi\n\
         RUN --mount=type=bind,source=sub,target=/mnt/sub cat /mnt/sub/x > /home/bob/work/x\n\
         VOLUME /vol\nENTRYPOINT echo entry\n",
        // expansion, labels, ports, wildcards, permissions, a chown'd COPY's parents
        "ARG V=1.0\nFROM scratch\nADD rootfs.tar /\nARG V\nARG EMPTY\n\
         ENV APP_HOME=/opt/app VERSION=$V PATHX=\"a b\" UNSET=${EMPTY:-dflt} ALT=${V:+set}\n\
         LABEL version=\"$V\" desc=\"two words\" multi.key=value\nEXPOSE 80 443/tcp 53/udp\n\
         COPY *.txt $APP_HOME/\nCOPY --chown=bob sub/x /owned/by/bob/x\nCOPY --chmod=750 sub/ /d2/\n\
         RUN ln -s /opt/app/a.txt /linked && chmod 640 /etc/group && chown bob /opt/dir/a && rm -rf /opt/dir/b\n\
         WORKDIR $APP_HOME\nUSER 1000:1000\nSTOPSIGNAL 9\nCMD echo $VERSION\n",
    ] {
        e.dockerfile(df);
        compare_with_buildah(&e, &buildah, &[]);
    }
}

#[test]
fn images_run_under_podman() {
    let test = "images_run_under_podman";
    if !ready(test) {
        return;
    }
    let Some(podman) = tool(test, "podman") else {
        return;
    };
    let e = Env::new();
    setup(&e);
    let da = e.dir.path().join("img.docker.tar");
    let oa = e.dir.path().join("img.oci.tar");
    let name = format!("localhost/rt-build-podman-{}", rand_name());
    e.build_ok(&[
        "-t",
        &name,
        "--output",
        &format!("docker-archive:{}", da.display()),
        "--output",
        &format!("oci-archive:{}", oa.display()),
    ]);
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap()
        .1;
    for archive in [&da, &oa] {
        let out = Command::new(&podman)
            .args(["load", "-i"])
            .arg(archive)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "podman load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new(&podman)
            .arg("--runtime")
            .arg(sibling("rt"))
            .args(["run", "--rm", "--network", "none"])
            .arg(format!("--ulimit=nofile={hard}:{hard}"))
            .args(["--ulimit=nproc=32768:32768", &format!("{name}:latest")])
            .output()
            .unwrap();
        let _ = Command::new(&podman)
            .args(["rmi", "-f", &format!("{name}:latest")])
            .output();
        assert!(
            out.status.success(),
            "podman run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    }
}

#[test]
fn runc_and_crun_run_the_steps_too() {
    let test = "runc_and_crun_run_the_steps_too";
    if !ready(test) {
        return;
    }
    for rt in ["runc", "crun"] {
        let Some(mut path) = tool(test, rt) else {
            continue;
        };
        if rt == "crun" && crun_refuses_this_host() {
            // crun as it runs here: in a mount namespace without the v2 mount.
            path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/crun-v1");
        }
        let e = Env::new();
        e.write("f.txt", "f\n");
        e.dockerfile(
            "FROM scratch\nADD rootfs.tar /\nUSER bob\nWORKDIR /home/bob\nRUN id -u > uid && echo $HOME > home\n\
             COPY f.txt .\nRUN --mount=type=tmpfs,target=/t --mount=type=cache,target=/c cat f.txt > copy\n\
             USER root\nRUN rm /etc/base.txt\n",
        );
        e.build_ok(&["--runtime", path.to_str().unwrap(), "-t", rt]);
        e.assert_clean();
        let (_d, root) = e.tree(rt);
        assert_eq!(read(&root, "home/bob/uid"), "1000\n", "{rt}");
        assert_eq!(read(&root, "home/bob/copy"), "f\n", "{rt}");
        assert!(!exists(&root, "etc/base.txt"), "{rt}");
        let out = e.build(&["--runtime", path.to_str().unwrap()]);
        assert!(String::from_utf8_lossy(&out.stdout).contains("Using cache"));
        e.dockerfile("FROM scratch\nADD rootfs.tar /\nRUN exit 7\n");
        let out = e.build(&["--runtime", path.to_str().unwrap()]);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("exit code 7"),
            "{rt}"
        );
        e.assert_clean();
    }
}

/// crun runs on a cgroup v1 or v2 host, and on a hybrid one only when the v2
/// hierarchy holds no controller (DEVELOPERS.md: this machine's hugetlb).
fn crun_refuses_this_host() -> bool {
    std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
        .is_ok_and(|c| !c.trim().is_empty())
}
