//! Writing a config.json the way runc does (Go's `json.MarshalIndent` with a
//! tab): same field order, same escaping, no trailing newline. oci-spec's own
//! serialisation orders fields differently and keeps capabilities in a
//! `HashSet`, so its output changes from run to run.

use oci_spec::runtime::Spec;
use serde_json::{Map, Value};

/// Serialises `spec` as runc would write it; `to_json(&default_spec(false))`
/// is byte-identical to `runc spec` (modulo the hostname).
pub fn to_json(spec: &Spec) -> String {
    // oci-spec types hold only strings, numbers, bools and string-keyed
    // maps, so serialising to a Value cannot fail.
    let value = serde_json::to_value(spec).expect("oci-spec types serialise to JSON");
    let mut out = String::new();
    write_value(&mut out, &value, "", 0);
    out
}

fn write_value(out: &mut String, value: &Value, ctx: &str, depth: usize) {
    match value {
        Value::Object(map) => write_object(out, map, ctx, depth),
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            let mut items: Vec<&Value> = items.iter().collect();
            // Capability sets have no order of their own; sorting reproduces
            // runc's (alphabetical) default lists and keeps output stable.
            if ctx.starts_with("process.capabilities.") {
                items.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                indent(out, depth + 1);
                write_value(out, item, ctx, depth + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            indent(out, depth);
            out.push(']');
        }
        Value::String(s) => write_string(out, s),
        other => out.push_str(&other.to_string()),
    }
}

fn write_object(out: &mut String, map: &Map<String, Value>, ctx: &str, depth: usize) {
    // Go omits unset optional fields; oci-spec writes a few of them as null.
    let mut keys: Vec<&String> = map
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, _)| k)
        .collect();
    if keys.is_empty() {
        out.push_str("{}");
        return;
    }
    // Known fields in Go struct order, then the rest (map keys, fields
    // unknown to the table) sorted, as Go sorts map keys.
    let order = field_order(ctx);
    let rank = |k: &str| order.iter().position(|o| *o == k).unwrap_or(order.len());
    keys.sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.cmp(b)));

    out.push_str("{\n");
    for (i, key) in keys.iter().enumerate() {
        indent(out, depth + 1);
        write_string(out, key);
        out.push_str(": ");
        let child = if ctx.is_empty() {
            (*key).clone()
        } else {
            format!("{ctx}.{key}")
        };
        write_value(out, &map[*key], &child, depth + 1);
        out.push_str(if i + 1 < keys.len() { ",\n" } else { "\n" });
    }
    indent(out, depth);
    out.push('}');
}

/// Go's encoder escapes HTML-significant characters and the JavaScript line
/// separators that serde_json leaves alone.
fn write_string(out: &mut String, s: &str) {
    let encoded = Value::from(s).to_string();
    for c in encoded.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push('\t');
    }
}

/// Field order of the runtime-spec Go structs (specs-go/config.go), keyed by
/// the JSON path of the object with array indices dropped.
fn field_order(ctx: &str) -> &'static [&'static str] {
    match ctx {
        "" => &[
            "ociVersion",
            "process",
            "root",
            "hostname",
            "domainname",
            "mounts",
            "hooks",
            "annotations",
            "linux",
            "solaris",
            "windows",
            "vm",
            "zos",
        ],
        "process" => &[
            "terminal",
            "consoleSize",
            "user",
            "args",
            "commandLine",
            "env",
            "cwd",
            "capabilities",
            "rlimits",
            "noNewPrivileges",
            "apparmorProfile",
            "oomScoreAdj",
            "scheduler",
            "selinuxLabel",
            "ioPriority",
            "execCPUAffinity",
        ],
        "process.consoleSize" => &["height", "width"],
        "process.user" => &["uid", "gid", "umask", "additionalGids", "username"],
        "process.capabilities" => &[
            "bounding",
            "effective",
            "inheritable",
            "permitted",
            "ambient",
        ],
        "process.rlimits" => &["type", "hard", "soft"],
        "process.scheduler" => &[
            "policy", "nice", "priority", "flags", "runtime", "deadline", "period",
        ],
        "process.ioPriority" => &["class", "priority"],
        "process.execCPUAffinity" => &["initial", "final"],
        "root" => &["path", "readonly"],
        "mounts" => &[
            "destination",
            "type",
            "source",
            "options",
            "uidMappings",
            "gidMappings",
        ],
        "hooks" => &[
            "prestart",
            "createRuntime",
            "createContainer",
            "startContainer",
            "poststart",
            "poststop",
        ],
        c if c.starts_with("hooks.") => &["path", "args", "env", "timeout"],
        "linux" => &[
            "uidMappings",
            "gidMappings",
            "sysctl",
            "resources",
            "cgroupsPath",
            "namespaces",
            "devices",
            "seccomp",
            "rootfsPropagation",
            "maskedPaths",
            "readonlyPaths",
            "mountLabel",
            "intelRdt",
            "personality",
            "timeOffsets",
            "memoryPolicy",
            "netDevices",
        ],
        "linux.uidMappings" | "linux.gidMappings" | "mounts.uidMappings" | "mounts.gidMappings" => {
            &["containerID", "hostID", "size"]
        }
        "linux.namespaces" => &["type", "path"],
        "linux.devices" => &["path", "type", "major", "minor", "fileMode", "uid", "gid"],
        "linux.resources" => &[
            "devices",
            "memory",
            "cpu",
            "pids",
            "blockIO",
            "hugepageLimits",
            "network",
            "rdma",
            "unified",
        ],
        "linux.resources.devices" => &["allow", "type", "major", "minor", "access"],
        "linux.resources.memory" => &[
            "limit",
            "reservation",
            "swap",
            "kernel",
            "kernelTCP",
            "swappiness",
            "disableOOMKiller",
            "useHierarchy",
            "checkBeforeUpdate",
        ],
        "linux.resources.cpu" => &[
            "shares",
            "quota",
            "burst",
            "period",
            "realtimeRuntime",
            "realtimePeriod",
            "cpus",
            "mems",
            "idle",
        ],
        "linux.resources.blockIO" => &[
            "weight",
            "leafWeight",
            "weightDevice",
            "throttleReadBpsDevice",
            "throttleWriteBpsDevice",
            "throttleReadIOPSDevice",
            "throttleWriteIOPSDevice",
        ],
        "linux.resources.blockIO.weightDevice" => &["major", "minor", "weight", "leafWeight"],
        c if c.starts_with("linux.resources.blockIO.throttle") => &["major", "minor", "rate"],
        "linux.resources.hugepageLimits" => &["pageSize", "limit"],
        "linux.resources.network" => &["classID", "priorities"],
        "linux.resources.network.priorities" => &["name", "priority"],
        "linux.seccomp" => &[
            "defaultAction",
            "defaultErrnoRet",
            "architectures",
            "flags",
            "listenerPath",
            "listenerMetadata",
            "syscalls",
        ],
        "linux.seccomp.syscalls" => &["names", "action", "errnoRet", "args"],
        "linux.seccomp.syscalls.args" => &["index", "value", "valueTwo", "op"],
        "linux.intelRdt" => &[
            "closID",
            "l3CacheSchema",
            "memBwSchema",
            "schemata",
            "enableCMT",
            "enableMBM",
        ],
        "linux.personality" => &["domain", "flags"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse;
    use std::path::Path;

    fn roundtrip(json: &str) -> String {
        to_json(&parse(json.as_bytes(), Path::new("config.json")).unwrap())
    }

    #[test]
    fn output_reparses_to_the_same_spec() {
        let spec = crate::default_spec(false);
        let text = to_json(&spec);
        assert_eq!(parse(text.as_bytes(), Path::new("x")).unwrap(), spec);
        assert!(!text.ends_with('\n'));
    }

    #[test]
    fn go_field_order_and_sorted_maps() {
        let out = roundtrip(
            r#"{"linux": {"uidMappings": [{"size": 1, "hostID": 5, "containerID": 0}],
                          "sysctl": {"net.b": "1", "net.a": "2"}},
                "root": {"readonly": true, "path": "r"}, "ociVersion": "1.0.0"}"#,
        );
        let expected = "{\n\t\"ociVersion\": \"1.0.0\",\n\t\"root\": {\n\t\t\"path\": \"r\",\n\t\t\"readonly\": true\n\t},\n\t\"linux\": {\n\t\t\"uidMappings\": [\n\t\t\t{\n\t\t\t\t\"containerID\": 0,\n\t\t\t\t\"hostID\": 5,\n\t\t\t\t\"size\": 1\n\t\t\t}\n\t\t],\n\t\t\"sysctl\": {\n\t\t\t\"net.a\": \"2\",\n\t\t\t\"net.b\": \"1\"\n\t\t}\n\t}\n}";
        assert_eq!(out, expected);
    }

    #[test]
    fn capabilities_are_sorted() {
        let out = roundtrip(
            r#"{"ociVersion": "1.0.0", "process": {"user": {"uid": 0, "gid": 0}, "cwd": "/",
                "capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_KILL"]}}}"#,
        );
        let caps = out.find("CAP_CHOWN").unwrap() < out.find("CAP_KILL").unwrap()
            && out.find("CAP_KILL").unwrap() < out.find("CAP_SYS_ADMIN").unwrap();
        assert!(caps, "{out}");
    }

    #[test]
    fn strings_escaped_like_go() {
        let mut out = String::new();
        write_string(&mut out, "a<b>&\"\n\u{2028}");
        assert_eq!(out, r#""a\u003cb\u003e\u0026\"\n\u2028""#);
    }

    #[test]
    fn nulls_dropped_and_empty_containers_compact() {
        let out = roundtrip(
            r#"{"ociVersion": "1.0.0", "annotations": {},
                "linux": {"resources": {"devices": [{"allow": true}]}, "maskedPaths": []}}"#,
        );
        assert!(out.contains("\"annotations\": {}"), "{out}");
        assert!(out.contains("\"maskedPaths\": []"), "{out}");
        assert!(!out.contains("null"), "{out}");
    }
}
