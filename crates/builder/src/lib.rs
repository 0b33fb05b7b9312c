//! rt-builder: build OCI images from Dockerfiles. Each RUN is a container
//! of an OCI runtime (rt, runc, crun) whose root is an overlay of the
//! layers so far; the overlay's upper directory becomes the next layer.

#![forbid(unsafe_code)]

pub mod dockerfile;
pub mod error;

pub use error::{Error, Result};
pub mod build;
pub mod commit;
pub mod container;
pub mod context;
pub mod copy;
pub mod image;
pub mod mounts;
pub mod output;
pub mod progress;
pub mod run;
pub mod steps;
pub mod store;
pub mod workspace;

pub use build::{build, BuildOptions, Built};
pub use rt_image::layer;
pub use rt_image::ImageRef;
