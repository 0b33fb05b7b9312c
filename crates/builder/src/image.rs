//! The image a build is working on: its config (kept as JSON, so fields the
//! OCI types lack, like Docker's Healthcheck, OnBuild and Shell, and
//! whatever a base image carries, survive) and its layers.

use std::time::{Duration, SystemTime};

use rt_image::layer::LayerInfo;
use rt_image::oci::ImageConfiguration;
use rt_image::Digest;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// A layer blob in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
}

#[derive(Clone, Debug)]
pub struct ImageState {
    pub config: Value,
    pub layers: Vec<Layer>,
}

/// The time a build records: `SOURCE_DATE_EPOCH` when set, for
/// reproducible images.
pub fn build_time(epoch: Option<u64>) -> String {
    let t = match epoch {
        Some(s) => SystemTime::UNIX_EPOCH + Duration::from_secs(s),
        None => SystemTime::now(),
    };
    humantime::format_rfc3339_seconds(t).to_string()
}

impl ImageState {
    /// `FROM scratch`: no layers, this machine's platform.
    pub fn scratch() -> ImageState {
        let p = rt_image::Platform::host();
        let mut config = json!({
            "architecture": p.architecture,
            "os": p.os,
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        });
        if let Some(v) = p.variant {
            config["variant"] = Value::String(v);
        }
        ImageState {
            config,
            layers: Vec::new(),
        }
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.config).expect("a JSON value serialises")
    }

    /// The config's digest: the image ID, and a build step's parent in cache keys.
    pub fn id(&self) -> Digest {
        Digest::sha256(&self.config_bytes())
    }

    /// `config.config`, the part a Dockerfile sets.
    pub fn run_config(&mut self) -> &mut Map<String, Value> {
        let root = self.config.as_object_mut().expect("config is an object");
        let c = root
            .entry("config")
            .or_insert_with(|| Value::Object(Map::new()));
        if !c.is_object() {
            *c = Value::Object(Map::new());
        }
        c.as_object_mut().expect("just made an object")
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.config.get("config").and_then(|c| c.get(key))
    }

    pub fn strings(&self, key: &str) -> Vec<String> {
        self.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn string(&self, key: &str) -> Option<String> {
        self.get(key).and_then(Value::as_str).map(str::to_owned)
    }

    /// `Env` as pairs, in order.
    pub fn env(&self) -> Vec<(String, String)> {
        self.strings("Env")
            .into_iter()
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (e, String::new()),
            })
            .collect()
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env = self.strings("Env");
        let prefix = format!("{key}=");
        let item = format!("{key}={value}");
        match env.iter().position(|e| e.starts_with(&prefix) || e == key) {
            Some(i) => env[i] = item,
            None => env.push(item),
        }
        self.run_config().insert("Env".into(), json!(env));
    }

    /// Adds a history entry; `empty_layer` for steps that changed no files.
    pub fn add_history(&mut self, created: &str, created_by: &str, empty_layer: bool) {
        let mut h = json!({"created": created, "created_by": created_by});
        if empty_layer {
            h["empty_layer"] = Value::Bool(true);
        }
        let root = self.config.as_object_mut().expect("config is an object");
        let hist = root
            .entry("history")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(a) = hist.as_array_mut() {
            a.push(h);
        }
        root.insert("created".into(), Value::String(created.to_owned()));
    }

    /// Appends a layer and its diff_id.
    pub fn push_layer(&mut self, layer: Layer) {
        let root = self.config.as_object_mut().expect("config is an object");
        let rootfs = root
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        if let Some(a) = rootfs
            .as_object_mut()
            .and_then(|r| r.get_mut("diff_ids"))
            .and_then(Value::as_array_mut)
        {
            a.push(Value::String(layer.diff_id.to_string()));
        }
        self.layers.push(layer);
    }

    pub fn chain_ids(&self) -> Vec<Digest> {
        let mut out: Vec<Digest> = Vec::new();
        for l in &self.layers {
            out.push(Digest::chain(out.last(), &l.diff_id));
        }
        out
    }

    pub fn layer_infos(&self) -> Vec<LayerInfo> {
        self.layers
            .iter()
            .map(|l| LayerInfo {
                media_type: l.media_type.clone(),
                digest: Some(l.digest.clone()),
                size: Some(l.size),
                diff_id: l.diff_id.clone(),
            })
            .collect()
    }

    /// The config in oci-spec's types, for the runtime config.
    pub fn oci_config(&self) -> Result<ImageConfiguration> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| Error::Usage(format!("image config {}: {e}", self.id())))
    }
}
