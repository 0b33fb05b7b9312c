//! rt-unpack on images built here: the unpacked tree against umoci's, every
//! source format, platform choice, the layer store, the generated config,
//! and the bundle run by rt, runc and crun.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::*;
use rt_image::layer::Compression;
use serde_json::json;

/// Three layers (gzip, zstd, plain) with every entry kind and every
/// whiteout case.
fn rich_image() -> ImageSpec {
    rich_image_with([Compression::Gzip, Compression::Zstd, Compression::None])
}

/// umoci 0.4 reads no zstd.
fn rich_image_with(c: [Compression; 3]) -> ImageSpec {
    let mut l1 = Layer::new();
    l1.dir("etc", 0o755)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n",
        )
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\nstaff:x:50:bob\nbob:x:1000:\n",
        )
        .file("etc/remove-me", 0o600, b"gone in layer 2")
        .symlink("etc/abs", "/usr/bin/tool")
        .dir("usr", 0o755)
        .dir("usr/bin", 0o755)
        .file("usr/bin/tool", 0o755, b"#!/bin/sh\necho tool v1\n")
        .file_owned("usr/bin/suid", 0o4755, 0, 0, 1_500_000_000, b"setuid")
        .file_owned("usr/bin/sgid", 0o2755, 0, 50, 1_500_000_001, b"setgid")
        .file("usr/bin/sticky-not", 0o1644, b"sticky bit on a file")
        .hardlink("usr/bin/hl", "usr/bin/tool")
        .symlink("usr/bin/rel", "tool")
        .symlink("usr/bin/dangling", "../../nowhere")
        .dir_owned("home", 0o755, 0, 0)
        .dir_owned("home/bob", 0o700, 1000, 1000)
        .file_owned(
            "home/bob/.profile",
            0o640,
            1000,
            1000,
            1_234_567_890,
            b"export X=1\n",
        )
        .dir("dev", 0o755)
        .device("dev/null", true, 1, 3)
        .device("dev/loop9", false, 7, 9)
        .fifo("dev/fifo")
        .file_xattrs(
            "usr/bin/xattrs",
            0o644,
            b"x",
            &[("user.test", b"value"), ("trusted.t", b"t")],
        )
        .dir("var", 0o755)
        .dir("var/cache", 0o755)
        .file("var/cache/a", 0o644, b"a")
        .dir("var/cache/sub", 0o755)
        .file("var/cache/sub/b", 0o644, b"b")
        .dir("del", 0o755)
        .dir("del/deep", 0o755)
        .file("del/deep/x", 0o644, b"x")
        .dir("opt", 0o755)
        .dir("opt/old", 0o755)
        .file("opt/old/f", 0o644, b"f")
        .dir("tmp", 0o1777);
    let mut l2 = Layer::new();
    l2.dir("etc", 0o755)
        .whiteout("etc/remove-me")
        .whiteout("del")
        .dir("var/cache", 0o700)
        .opaque("var/cache")
        .file("var/cache/c", 0o644, b"c")
        .file("usr/bin/tool", 0o755, b"#!/bin/sh\necho tool v2\n")
        .dir("etc/abs", 0o750)
        .file("opt/old", 0o644, b"now a file")
        .whiteout("does/not/exist");
    let mut l3 = Layer::new();
    l3.dir("usr/bin", 0o755)
        .file("usr/bin/same-layer", 0o644, b"kept")
        .whiteout("usr/bin/same-layer")
        .hardlink("usr/bin/hl2", "usr/bin/tool")
        .dir("var/cache", 0o755)
        .opaque("var/cache")
        .file("var/cache/d", 0o644, b"d")
        .symlink("etc/abs/inner", "/etc/passwd");
    ImageSpec::new()
        .layer(&mut l1, c[0])
        .layer(&mut l2, c[1])
        .layer(&mut l3, c[2])
        .config(json!({"Cmd": ["/usr/bin/tool"]}))
}

fn umoci_unpack(layout: &Path, tag: &str, bundle: &Path) {
    must(
        run(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:{tag}", layout.display()))
            .arg(bundle)),
        "umoci unpack",
    );
}

fn assert_same_tree(ours: &Path, theirs: &Path) {
    let a = snapshot(ours, true);
    let b = snapshot(theirs, true);
    let d = diff(&a, &b);
    assert!(d.is_empty(), "trees differ:\n{}", d.join("\n"));
}

#[test]
fn multi_layer_image_unpacks_as_umoci_does() {
    if !root_or_skip("multi_layer") || tool_or_skip("multi_layer", "umoci").is_none() {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    rich_image_with([Compression::Gzip, Compression::None, Compression::Gzip]).write(&img, "v1");
    let ours = t.path().join("ours");
    must(
        unpack(&[&format!("oci:{}:v1", img.display()), ours.to_str().unwrap()]),
        "rt-unpack",
    );
    let theirs = t.path().join("theirs");
    umoci_unpack(&img, "v1", &theirs);
    assert_same_tree(&ours.join("rootfs"), &theirs.join("rootfs"));

    // The cases spelled out, so a shared mistake cannot hide.
    let r = ours.join("rootfs");
    assert!(!r.join("etc/remove-me").exists());
    assert!(!r.join("del").exists());
    assert_eq!(names(&r.join("var/cache")), ["d"]);
    assert_eq!(fs::read(r.join("usr/bin/same-layer")).unwrap(), b"kept");
    assert_eq!(
        fs::read(r.join("usr/bin/hl")).unwrap(),
        b"#!/bin/sh\necho tool v1\n"
    );
    assert_eq!(
        fs::read(r.join("usr/bin/hl2")).unwrap(),
        b"#!/bin/sh\necho tool v2\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        fs::metadata(r.join("usr/bin/hl2")).unwrap().ino(),
        fs::metadata(r.join("usr/bin/tool")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(r.join("usr/bin/suid")).unwrap().mode() & 0o7777,
        0o4755
    );
    let walk = snapshot(&r, false);
    assert!(
        walk.keys().all(|k| !k.contains(".wh.")),
        "whiteout left: {walk:?}"
    );
}

#[test]
fn every_source_format_gives_the_same_tree() {
    if !root_or_skip("formats") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let spec = rich_image();
    let img = t.path().join("img");
    spec.write(&img, "latest");
    let a = t.path().join("a");
    must(
        unpack(&[&format!("oci:{}", img.display()), a.to_str().unwrap()]),
        "oci",
    );

    let archive = t.path().join("img.tar");
    rt_image::layout::LayoutWriter::create(&img)
        .unwrap()
        .write_archive(&archive)
        .unwrap();
    let b = t.path().join("b");
    must(
        unpack(&[
            &format!("oci-archive:{}:latest", archive.display()),
            b.to_str().unwrap(),
        ]),
        "oci-archive",
    );

    // docker save's layout: <id>/layer.tar (uncompressed), <config hex>.json
    let docker = t.path().join("docker.tar");
    let config = serde_json::to_vec(&spec.config_json()).unwrap();
    let config_name = format!("{}.json", rt_image::Digest::sha256(&config).hex());
    let mut tb = tar::Builder::new(Vec::new());
    let mut layers = Vec::new();
    let add = |tb: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        tb.append_data(&mut h, name, data).unwrap();
    };
    for (i, (tar, blob, _)) in spec.layers.iter().enumerate() {
        let name = format!("{i:064}/layer.tar");
        // docker writes plain tars; a compressed one must be sniffed
        add(&mut tb, &name, if i == 0 { blob } else { tar });
        layers.push(name);
    }
    add(&mut tb, &config_name, &config);
    let manifest = json!([{"Config": config_name, "RepoTags": ["test/rich:1"], "Layers": layers}]);
    add(
        &mut tb,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    fs::write(&docker, tb.into_inner().unwrap()).unwrap();
    let c = t.path().join("c");
    must(
        unpack(&[
            &format!("docker-archive:{}", docker.display()),
            c.to_str().unwrap(),
        ]),
        "docker-archive",
    );
    let d = t.path().join("d");
    must(
        unpack(&[
            &format!("docker-archive:{}:test/rich:1", docker.display()),
            d.to_str().unwrap(),
        ]),
        "docker-archive tag",
    );

    let base = snapshot(&a.join("rootfs"), true);
    for other in [&b, &c, &d] {
        let dd = diff(&snapshot(&other.join("rootfs"), true), &base);
        assert!(dd.is_empty(), "{}:\n{}", other.display(), dd.join("\n"));
    }
    let o = unpack(&[
        &format!("docker-archive:{}:nope", docker.display()),
        t.path().join("e").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no image tagged \"nope\" (tags: test/rich:1)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_index_yields_this_machines_manifest() {
    if !root_or_skip("index") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    let mut descs = Vec::new();
    for arch in ["s390x", host_arch().as_str(), "riscv64"] {
        let mut l = Layer::new();
        l.file("arch", 0o644, arch.as_bytes());
        let mut spec = ImageSpec::new()
            .layer(&mut l, Compression::Gzip)
            .config(json!({"Cmd": ["/x"]}));
        spec.arch = arch.to_owned();
        descs.push(spec.write(&img, &format!("only-{arch}")));
    }
    let w = rt_image::layout::LayoutWriter::create(&img).unwrap();
    let index = rt_image::oci::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(rt_image::oci::MediaType::ImageIndex)
        .manifests(descs.clone())
        .build()
        .unwrap();
    let idx = w
        .put_json("application/vnd.oci.image.index.v1+json", &index)
        .unwrap();
    w.tag(idx.clone(), Some("multi")).unwrap();

    let read_arch = |src: String, extra: &[&str]| {
        let b = tempfile::tempdir().unwrap().keep().join("b");
        let mut args = extra.to_vec();
        args.push(&src);
        args.push(b.to_str().unwrap());
        must(unpack(&args), &src);
        let s = fs::read_to_string(b.join("rootfs/arch")).unwrap();
        rt_image::cleanup(&b).unwrap();
        s
    };
    let layout = img.display().to_string();
    assert_eq!(read_arch(format!("oci:{layout}:multi"), &[]), host_arch());
    assert_eq!(
        read_arch(
            format!("oci:{layout}:multi"),
            &["--platform", "linux/s390x"]
        ),
        "s390x"
    );
    assert_eq!(
        read_arch(format!("oci:{layout}:{}", idx.digest()), &[]),
        host_arch()
    );
    assert_eq!(
        read_arch(format!("oci:{layout}:{}", descs[2].digest()), &[]),
        "riscv64"
    );

    let o = unpack(&[
        "--platform",
        "linux/mips",
        &format!("oci:{layout}:multi"),
        t.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("no manifest for linux/mips"),
        "{}",
        stderr(&o)
    );
    let o = unpack(&[
        &format!("oci:{layout}:nope"),
        t.path().join("x").to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("no image tagged \"nope\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_store_gives_the_same_tree_and_a_second_bundle_is_cheap() {
    if !root_or_skip("store") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    rich_image().write(&img, "latest");
    let src = format!("oci:{}", img.display());
    let plain = t.path().join("plain");
    must(unpack(&[&src, plain.to_str().unwrap()]), "plain");
    let store = t.path().join("store");
    let b1 = t.path().join("b1");
    let b2 = t.path().join("b2");
    must(
        unpack(&[
            "--store",
            store.to_str().unwrap(),
            &src,
            b1.to_str().unwrap(),
        ]),
        "store 1",
    );
    let stored = names(&store.join("layers"));
    assert_eq!(stored.len(), 3);
    let start = Instant::now();
    must(
        unpack(&[
            "--store",
            store.to_str().unwrap(),
            &src,
            b2.to_str().unwrap(),
        ]),
        "store 2",
    );
    let second = start.elapsed();
    assert_eq!(
        names(&store.join("layers")),
        stored,
        "nothing extracted again"
    );
    assert!(second.as_secs_f64() < 2.0, "second bundle took {second:?}");

    // A hardlink to a lower layer's file is a copy under overlayfs.
    let cross_layer_link = "/usr/bin/hl2 (links)";
    let mut base = snapshot(&plain.join("rootfs"), true);
    assert!(base.remove(cross_layer_link).is_some());
    for b in [&b1, &b2] {
        let d = diff(&snapshot(&b.join("rootfs"), true), &base);
        assert!(d.is_empty(), "{}:\n{}", b.display(), d.join("\n"));
    }
    // Writes stay in the bundle's upper layer.
    fs::write(b1.join("rootfs/etc/passwd"), b"changed").unwrap();
    assert_ne!(fs::read(b2.join("rootfs/etc/passwd")).unwrap(), b"changed");

    for b in [&b1, &b2] {
        must(unpack(&["--cleanup", b.to_str().unwrap()]), "cleanup");
        assert!(!b.exists());
    }
    assert_eq!(names(&store.join("layers")), stored, "the store stays");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(t.path().to_str().unwrap()), "left mounted");
}

#[test]
fn config_follows_the_image_and_the_options() {
    if !root_or_skip("config") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.dir("etc", 0o755)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/srv:/bin/sh\n",
        )
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\napp:x:1002:\nextra:x:77:app\n",
        );
    let img = t.path().join("img");
    ImageSpec::new()
        .layer(&mut l, Compression::Gzip)
        .config(json!({
            "Entrypoint": ["/bin/entry", "-v"],
            "Cmd": ["serve", "--port=80"],
            "Env": ["PATH=/opt/bin:/bin", "MODE=prod"],
            "WorkingDir": "/srv",
            "User": "app",
            "Labels": {"org.example.team": "infra", "org.opencontainers.image.os": "label wins"},
            "StopSignal": "SIGQUIT",
            "ExposedPorts": {"80/tcp": {}, "443/tcp": {}}
        }))
        .write(&img, "latest");
    let src = format!("oci:{}", img.display());
    let load = |b: &Path| -> serde_json::Value {
        serde_json::from_slice(&fs::read(b.join("config.json")).unwrap()).unwrap()
    };

    let a = t.path().join("a");
    must(unpack(&[&src, a.to_str().unwrap()]), "default");
    let c = load(&a);
    assert_eq!(
        c["process"]["args"],
        json!(["/bin/entry", "-v", "serve", "--port=80"])
    );
    assert_eq!(
        c["process"]["env"],
        json!(["PATH=/opt/bin:/bin", "MODE=prod"])
    );
    assert_eq!(c["process"]["cwd"], "/srv");
    assert_eq!(
        c["process"]["user"],
        json!({"uid": 1001, "gid": 1002, "additionalGids": [77]})
    );
    assert_eq!(c["process"]["terminal"], false);
    assert_eq!(c["root"], json!({"path": "rootfs", "readonly": false}));
    let ann = &c["annotations"];
    assert_eq!(ann["org.example.team"], "infra");
    assert_eq!(ann["org.opencontainers.image.os"], "label wins");
    assert_eq!(ann["org.opencontainers.image.architecture"], host_arch());
    assert_eq!(ann["org.opencontainers.image.stopSignal"], "SIGQUIT");
    assert_eq!(
        ann["org.opencontainers.image.exposedPorts"],
        "443/tcp,80/tcp"
    );
    assert_eq!(
        ann["org.opencontainers.image.created"],
        "2024-01-02T03:04:05Z"
    );
    // runc's defaults are all there
    assert_eq!(c["hostname"], "rt");
    assert_eq!(c["linux"]["namespaces"].as_array().unwrap().len(), 5);
    assert!(c["linux"]["maskedPaths"].as_array().unwrap().len() > 5);

    let b = t.path().join("b");
    must(
        unpack(&[
            "--env",
            "MODE=dev",
            "-e",
            "NEW=1",
            "--hostname",
            "box",
            "--user",
            "1001:0",
            "--cwd",
            "/",
            "--tty",
            "--readonly",
            "--rootless",
            &src,
            b.to_str().unwrap(),
            "--",
            "run",
            "fast",
        ]),
        "options",
    );
    let c = load(&b);
    assert_eq!(
        c["process"]["args"],
        json!(["/bin/entry", "-v", "run", "fast"])
    );
    assert_eq!(
        c["process"]["env"],
        json!(["PATH=/opt/bin:/bin", "TERM=xterm", "MODE=dev", "NEW=1"])
    );
    assert_eq!(c["process"]["user"], json!({"uid": 1001, "gid": 0}));
    assert_eq!(c["process"]["terminal"], true);
    assert_eq!(c["hostname"], "box");
    assert_eq!(c["root"]["readonly"], true);
    let ns: Vec<&str> = c["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert!(ns.contains(&"user") && !ns.contains(&"network"), "{ns:?}");
    assert_eq!(
        c["linux"]["uidMappings"],
        json!([{"containerID": 0, "hostID": 0, "size": 1}])
    );

    let e = t.path().join("e");
    must(
        unpack(&[
            "--entrypoint",
            "/bin/sh",
            "--entrypoint",
            "-c",
            &src,
            e.to_str().unwrap(),
            "--",
            "echo hi",
        ]),
        "entrypoint",
    );
    assert_eq!(
        load(&e)["process"]["args"],
        json!(["/bin/sh", "-c", "echo hi"])
    );

    let o = unpack(&[
        "--user",
        "nobody",
        &src,
        t.path().join("f").to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("user \"nobody\" is not in the image's /etc/passwd"),
        "{}",
        stderr(&o)
    );
    assert!(!t.path().join("f").exists());
}

fn busybox_image(dir: &Path, user: &str) {
    let bb = fs::read("/bin/busybox").expect("busybox-static is installed");
    let mut l = Layer::new();
    l.dir("bin", 0o755)
        .file("bin/busybox", 0o755, &bb)
        .symlink("bin/sh", "busybox")
        .symlink("bin/id", "busybox")
        .symlink("bin/cat", "busybox")
        .dir("etc", 0o755)
        .file(
            "etc/passwd",
            0o644,
            b"root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/:/bin/sh\n",
        )
        .file(
            "etc/group",
            0o644,
            b"root:x:0:\nbob:x:1000:\nfriends:x:60:bob\n",
        )
        .dir("data", 0o755)
        .file("data/msg", 0o644, b"from the image");
    ImageSpec::new()
        .layer(&mut l, Compression::Zstd)
        .config(json!({
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["echo $(id -u):$(id -g):$(id -G) $GREETING $(pwd) $(cat msg) $(hostname)"],
            "Env": ["GREETING=hello"],
            "WorkingDir": "/data",
            "User": user
        }))
        .write(dir, "latest");
}

fn rt_binary() -> std::path::PathBuf {
    Path::new(bin()).parent().unwrap().join("rt")
}

#[test]
fn the_bundle_runs_under_rt_runc_and_crun() {
    if !root_or_skip("runs") {
        return;
    }
    let rt = rt_binary();
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    busybox_image(&img, "bob");
    let want = "1000:1000:1000 60 hello /data from the image box\n";
    let mut runtimes: Vec<(String, std::path::PathBuf)> = Vec::new();
    if rt.is_file() {
        runtimes.push(("rt".into(), rt.clone()));
    } else if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{} is not built", rt.display());
    } else {
        eprintln!("rt not built, only runc");
    }
    if let Some(runc) = tool_or_skip("runs", "runc") {
        runtimes.push(("runc".into(), runc));
    }
    if let Some(mut crun) = tool_or_skip("runs", "crun") {
        // crun refuses a hybrid cgroup host whose v2 hierarchy holds a controller
        // (this machine's hugetlb): there it runs without the v2 mount.
        if std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers")
            .is_ok_and(|c| !c.trim().is_empty())
        {
            crun = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../hack/crun-v1");
        }
        runtimes.push(("crun".into(), crun));
    }
    for store in [false, true] {
        for (name, path) in &runtimes {
            let b = t.path().join(format!("{name}-{store}"));
            let src = format!("oci:{}", img.display());
            let st = t.path().join("store");
            let mut args = vec!["--hostname", "box"];
            if store {
                args.extend(["--store", st.to_str().unwrap()]);
            }
            args.extend([src.as_str(), b.to_str().unwrap()]);
            must(unpack(&args), "unpack");
            let root = t.path().join(format!("state-{name}"));
            let id = format!("rt-unpack-test-{}-{name}-{store}", std::process::id());
            let o = run(Command::new(path)
                .arg("--root")
                .arg(&root)
                .args(["run", "--bundle"])
                .arg(&b)
                .arg(&id));
            let _ = run(Command::new(path)
                .arg("--root")
                .arg(&root)
                .args(["delete", "-f", &id]));
            must(unpack(&["--cleanup", b.to_str().unwrap()]), "cleanup");
            assert_eq!(
                String::from_utf8_lossy(&o.stdout),
                want,
                "{name} (store: {store}): {}",
                stderr(&o)
            );
            assert!(o.status.success(), "{name}: {}", stderr(&o));
        }
    }
}

#[test]
fn damaged_or_mismatched_images_leave_no_bundle() {
    if !root_or_skip("damaged") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let mut l = Layer::new();
    l.file("big", 0o644, &vec![b'x'; 300_000])
        .file("small", 0o644, b"s");
    let spec = ImageSpec::new()
        .layer(&mut l, Compression::Gzip)
        .config(json!({"Cmd": ["/x"]}));
    let blob = spec.layers[0].1.clone();
    let blob_path = |img: &Path| img.join(rt_image::Digest::sha256(&blob).blob_path());
    let out = t.path().join("out");
    fs::create_dir(&out).unwrap();
    let attempt = |img: &Path| {
        let b = out.join("bundle");
        let o = unpack(&[&format!("oci:{}", img.display()), b.to_str().unwrap()]);
        assert!(!o.status.success());
        assert!(names(&out).is_empty(), "left behind: {:?}", names(&out));
        stderr(&o)
    };

    // a flipped byte in the blob
    let img = t.path().join("flipped");
    spec.write(&img, "latest");
    let mut data = fs::read(blob_path(&img)).unwrap();
    let n = data.len();
    data[n - 12] ^= 0x55;
    fs::write(blob_path(&img), &data).unwrap();
    let e = attempt(&img);
    assert!(
        e.contains("digest mismatch") || e.contains("damaged"),
        "{e}"
    );

    // truncated gzip
    let img = t.path().join("truncated");
    spec.write(&img, "latest");
    fs::write(blob_path(&img), &blob[..blob.len() / 2]).unwrap();
    let e = attempt(&img);
    assert!(
        e.contains("size mismatch") && e.contains("gzip data is truncated"),
        "{e}"
    );
    // and one whose descriptor agrees: the data itself is cut short
    let img = t.path().join("truncated-described");
    let mut cut = spec.layers[0].clone();
    cut.1.truncate(cut.1.len() / 2);
    let short = ImageSpec {
        layers: vec![cut],
        config: spec.config.clone(),
        arch: spec.arch.clone(),
    };
    short.write(&img, "latest");
    let e = attempt(&img);
    assert!(
        e.contains("layer 1") && e.contains("gzip data is truncated"),
        "{e}"
    );

    // a wrong diff_id in the config
    let img = t.path().join("diffid");
    let mut bad = ImageSpec::new().layer(Layer::new().file("a", 0o644, b"a"), Compression::Gzip);
    bad.layers[0].0 = b"not the tar".to_vec();
    bad.write(&img, "latest");
    let e = attempt(&img);
    assert!(e.contains("diff_id mismatch"), "{e}");

    // a manifest whose config blob was altered
    let img = t.path().join("config");
    let m = spec.write(&img, "latest");
    let m: serde_json::Value = serde_json::from_slice(
        &fs::read(img.join(format!("blobs/sha256/{}", m.digest().digest()))).unwrap(),
    )
    .unwrap();
    let cfg_digest: rt_image::Digest = m["config"]["digest"].as_str().unwrap().parse().unwrap();
    let cfg_path = img.join(cfg_digest.blob_path());
    let mut c = fs::read(&cfg_path).unwrap();
    c[10] = b' ';
    fs::write(&cfg_path, c).unwrap();
    let e = attempt(&img);
    assert!(e.contains("config") && e.contains("mismatch"), "{e}");

    // a missing blob
    let img = t.path().join("missing");
    spec.write(&img, "latest");
    fs::remove_file(blob_path(&img)).unwrap();
    let e = attempt(&img);
    assert!(e.contains("is missing"), "{e}");
}

#[test]
fn a_layer_bigger_than_the_disk_fails_cleanly() {
    if !root_or_skip("disk_full") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let img = t.path().join("img");
    let mut l = Layer::new();
    l.file("huge", 0o644, &vec![0u8; 8 << 20]);
    ImageSpec::new()
        .layer(&mut l, Compression::Zstd)
        .config(json!({"Cmd": ["/x"]}))
        .write(&img, "latest");
    let small = t.path().join("small");
    fs::create_dir(&small).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &small,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=2m"),
    )
    .unwrap();
    let o = unpack(&[
        &format!("oci:{}", img.display()),
        small.join("b").to_str().unwrap(),
    ]);
    let left = names(&small);
    nix::mount::umount(&small).unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("write /huge: No space left on device"), "{e}");
    assert!(left.is_empty(), "left behind: {left:?}");
}
