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
    c
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
    e.build_ok(&["--build-arg", "WHO=tests", "-t", "cmp"]);
    let name = format!("localhost/rt-build-cmp-{}", rand_name());
    let out = Command::new(&buildah)
        .args([
            "bud",
            "--layers=false",
            "-q",
            "--build-arg",
            "WHO=tests",
            "-t",
            &name,
        ])
        .arg(&e.ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah bud: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layout = e.dir.path().join("buildah-oci");
    let out = Command::new(&buildah)
        .args(["push", &name])
        .arg(format!("oci:{}:cmp", layout.display()))
        .output()
        .unwrap();
    let _ = Command::new(&buildah).args(["rmi", &name]).output();
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
