//! Hostile layers: every way an entry, hardlink, symlink or whiteout could
//! reach outside the rootfs. Each aims at a host directory (the victim) and
//! must leave it exactly as it was, in plain and in store mode.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use rt_image::layer::Compression;
use serde_json::json;

struct Case {
    t: tempfile::TempDir,
    n: usize,
}

impl Case {
    fn new() -> Case {
        Case {
            t: tempfile::tempdir().unwrap(),
            n: 0,
        }
    }

    /// Unpacks an image of `layers` both ways; returns the plain bundle's
    /// rootfs (if it succeeded) and rt-unpack's error messages.
    fn unpack(&mut self, layers: Vec<Layer>) -> (Option<std::path::PathBuf>, Vec<String>) {
        self.n += 1;
        let img = self.t.path().join(format!("img{}", self.n));
        let mut spec = ImageSpec::new().config(json!({"Cmd": ["/x"]}));
        for mut l in layers {
            spec = spec.layer(&mut l, Compression::Gzip);
        }
        spec.write(&img, "latest");
        let src = format!("oci:{}", img.display());
        let out = self.t.path().join(format!("out{}", self.n));
        fs::create_dir(&out).unwrap();
        let mut errors = Vec::new();
        let plain = out.join("plain");
        let o = unpack(&[&src, plain.to_str().unwrap()]);
        let ok = o.status.success();
        if !ok {
            errors.push(stderr(&o));
            assert!(
                names(&out).is_empty(),
                "failed unpack left {:?}",
                names(&out)
            );
        }
        let stored = out.join("stored");
        let store = self.t.path().join("store");
        let o = unpack(&[
            "--store",
            store.to_str().unwrap(),
            &src,
            stored.to_str().unwrap(),
        ]);
        if o.status.success() {
            must(unpack(&["--cleanup", stored.to_str().unwrap()]), "cleanup");
        } else {
            errors.push(stderr(&o));
        }
        assert_eq!(o.status.success(), ok, "plain and store agree: {errors:?}");
        (ok.then(|| plain.join("rootfs")), errors)
    }
}

fn victim_rel(v: &Victim) -> String {
    v.s().trim_start_matches('/').to_owned()
}

#[test]
fn dotdot_names_are_refused() {
    if !root_or_skip("dotdot") {
        return;
    }
    let v = Victim::new();
    let mut c = Case::new();
    let depth = "../".repeat(12);
    for name in [
        format!("{depth}{}/secret", victim_rel(&v)),
        format!("a/{depth}{}/new", victim_rel(&v)),
        "..".to_owned(),
    ] {
        let mut l = Layer::new();
        l.dir("a", 0o755).file(&name, 0o644, b"pwned");
        let (ok, errs) = c.unpack(vec![l]);
        assert!(ok.is_none(), "{name} accepted");
        assert!(
            errs[0].contains("\"..\" component would leave the root"),
            "{errs:?}"
        );
        v.check();
    }
}

#[test]
fn absolute_names_stay_inside() {
    if !root_or_skip("absolute") {
        return;
    }
    let v = Victim::new();
    let mut c = Case::new();
    let mut l = Layer::new();
    l.file(&format!("{}/secret", v.s()), 0o644, b"pwned")
        .file(&format!("{}/new", v.s()), 0o644, b"pwned")
        .dir(&format!("{}/sub", v.s()), 0o777);
    let (root, errs) = c.unpack(vec![l]);
    let root = root.unwrap_or_else(|| panic!("{errs:?}"));
    assert_eq!(
        fs::read(root.join(format!("{}/secret", victim_rel(&v)))).unwrap(),
        b"pwned"
    );
    v.check();
}

#[test]
fn symlinks_planted_earlier_lead_nowhere_outside() {
    if !root_or_skip("symlinks") {
        return;
    }
    let v = Victim::new();
    let mut c = Case::new();
    let rel_up = format!("{}{}", "../".repeat(12), victim_rel(&v));
    // in the same layer, then from an earlier layer
    for split in [false, true] {
        let mut first = Layer::new();
        first
            .symlink("abs", &v.s())
            .symlink("rel", &rel_up)
            .symlink("file-link", &format!("{}/secret", v.s()))
            .symlink("dir-link", &v.s());
        let mut second = if split {
            Layer::new()
        } else {
            std::mem::take(&mut first)
        };
        second
            .file("abs/secret", 0o644, b"pwned")
            .file("abs/new", 0o644, b"pwned")
            .file("rel/sub/file", 0o644, b"pwned")
            .dir("rel/made", 0o777)
            .hardlink("abs/linked", "rel/secret")
            .fifo("abs/fifo")
            .symlink("abs/sub", "/")
            .file("abs/sub/deeper", 0o644, b"pwned");
        let layers = if split {
            vec![first, second]
        } else {
            vec![second]
        };
        let (root, errs) = c.unpack(layers);
        let root = root.unwrap_or_else(|| panic!("{errs:?}"));
        // what went through the links landed in the rootfs's own copy of the path
        let inside = root.join(victim_rel(&v));
        assert_eq!(fs::read(inside.join("secret")).unwrap(), b"pwned");
        // abs/sub became a symlink to "/" after rel/sub/file was written
        assert_eq!(fs::read_link(inside.join("sub")).unwrap(), Path::new("/"));
        assert_eq!(fs::read(root.join("deeper")).unwrap(), b"pwned");
        assert!(inside.join("made").is_dir());
        v.check();
    }
    // a file entry replaces a symlink, never writes through it; same for
    // a directory entry (which would otherwise chmod the target)
    let mut first = Layer::new();
    first
        .symlink("file-link", &format!("{}/secret", v.s()))
        .symlink("dir-link", &v.s());
    let mut second = Layer::new();
    second
        .file("file-link", 0o666, b"pwned")
        .dir("dir-link", 0o777);
    let (root, errs) = c.unpack(vec![first, second]);
    let root = root.unwrap_or_else(|| panic!("{errs:?}"));
    assert!(root.join("dir-link").symlink_metadata().unwrap().is_dir());
    v.check();
}

#[test]
fn hardlinks_cannot_reach_host_files() {
    if !root_or_skip("hardlinks") {
        return;
    }
    let v = Victim::new();
    let mut c = Case::new();
    let secret = format!("{}/secret", v.s());
    let mut planted = Layer::new();
    planted.symlink("dir-link", &v.s());
    for (target, refused) in [
        (
            format!("{}{}", "../".repeat(12), secret.trim_start_matches('/')),
            true,
        ),
        (secret.clone(), false),
        ("dir-link/secret".to_owned(), false),
    ] {
        let mut l = Layer::new();
        l.symlink("dir-link", &v.s()).hardlink("stolen", &target);
        let (root, errs) = c.unpack(vec![l]);
        assert!(root.is_none(), "hardlink to {target} accepted");
        let want = if refused {
            "would leave the root"
        } else {
            "does not exist"
        };
        assert!(errs[0].contains(want), "{target}: {errs:?}");
        assert_eq!(fs::metadata(&secret).unwrap().nlink(), 1);
        v.check();
    }
    let _ = planted;
}

#[test]
fn whiteouts_cannot_delete_host_files() {
    if !root_or_skip("whiteouts") {
        return;
    }
    let v = Victim::new();
    let mut c = Case::new();
    let mut first = Layer::new();
    first
        .symlink("abs", &v.s())
        .symlink("rel", &format!("{}{}", "../".repeat(12), victim_rel(&v)))
        .dir("d", 0o755)
        .symlink("d/sub", &format!("{}/sub", v.s()));
    let mut second = Layer::new();
    second
        .whiteout("abs/secret")
        .whiteout("rel/secret")
        .whiteout("abs/sub")
        .opaque("rel")
        .opaque("d/sub")
        .opaque("abs/sub");
    let (root, errs) = c.unpack(vec![first, second]);
    assert!(root.is_some(), "{errs:?}");
    v.check();

    for bad in ["x/.wh..", "../.wh.secret", ".wh..."] {
        let mut l = Layer::new();
        l.dir("x", 0o755).file(bad, 0o644, b"");
        let mut base = Layer::new();
        base.dir("x", 0o755);
        let (root, errs) = c.unpack(vec![base, l]);
        assert!(root.is_none(), "{bad} accepted");
        assert!(
            errs[0].contains("names no file") || errs[0].contains("leave the root"),
            "{bad}: {errs:?}"
        );
        v.check();
    }
}

#[test]
fn the_root_cannot_become_a_symlink() {
    if !root_or_skip("root") {
        return;
    }
    let v = Victim::new();
    let mut c = Case::new();
    for name in [".", "./", "/"] {
        let mut l = Layer::new();
        l.symlink(name, &v.s()).file("secret", 0o644, b"pwned");
        let (root, errs) = c.unpack(vec![l]);
        assert!(root.is_none(), "{name} accepted");
        assert!(
            errs[0].contains("would replace the root with a non-directory"),
            "{errs:?}"
        );
        v.check();
    }
    // a bundle or rootfs that is already a symlink is refused too
    let img = c.t.path().join("ok");
    ImageSpec::new()
        .layer(
            Layer::new().file("secret", 0o644, b"pwned"),
            Compression::Gzip,
        )
        .config(json!({"Cmd": ["/x"]}))
        .write(&img, "latest");
    let src = format!("oci:{}", img.display());
    let link = c.t.path().join("bundle-link");
    std::os::unix::fs::symlink(v.path(), &link).unwrap();
    let o = unpack(&[&src, link.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("exists and is not a directory"),
        "{}",
        stderr(&o)
    );
    let b = c.t.path().join("bundle-with-rootfs");
    fs::create_dir(&b).unwrap();
    std::os::unix::fs::symlink(v.path(), b.join("rootfs")).unwrap();
    let o = unpack(&[&src, b.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("exists and is not empty"),
        "{}",
        stderr(&o)
    );
    // and --cleanup of a bundle whose rootfs is a symlink removes the link only
    must(unpack(&["--cleanup", b.to_str().unwrap()]), "cleanup");
    assert!(!b.exists());
    v.check();
}

#[test]
fn passwd_lookups_stay_inside() {
    if !root_or_skip("passwd") {
        return;
    }
    let v = Victim::new();
    fs::write(v.path().join("passwd"), "hostuser:x:4242:4242::/:/bin/sh\n").unwrap();
    let mut c = Case::new();
    let mut l = Layer::new();
    l.dir("etc", 0o755)
        .symlink("etc/passwd", &format!("{}/passwd", v.s()));
    let img = c.t.path().join("img");
    ImageSpec::new()
        .layer(&mut l, Compression::Gzip)
        .config(json!({"Cmd": ["/x"], "User": "hostuser"}))
        .write(&img, "latest");
    let o = unpack(&[
        &format!("oci:{}", img.display()),
        c.t.path().join("b").to_str().unwrap(),
    ]);
    assert!(
        stderr(&o).contains("user \"hostuser\" is not in the image's /etc/passwd"),
        "{}",
        stderr(&o)
    );
    c.n += 1;
}

#[test]
fn nothing_is_created_beside_the_bundle() {
    if !root_or_skip("beside") {
        return;
    }
    let mut c = Case::new();
    let mut l = Layer::new();
    l.symlink("up", "..")
        .file("up/escaped", 0o644, b"x")
        .symlink("up2", "../..")
        .dir("up2/made", 0o755);
    let (root, errs) = c.unpack(vec![l]);
    let root = root.unwrap_or_else(|| panic!("{errs:?}"));
    assert!(root.join("escaped").is_file());
    let bundle = root.parent().unwrap();
    assert_eq!(names(bundle), ["config.json", "rootfs"]);
    assert_eq!(names(bundle.parent().unwrap()), ["plain"]);
    assert!(!Path::new(&c.t.path().join("made")).exists());
}
