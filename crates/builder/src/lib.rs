//! rt-builder: build OCI images from Dockerfiles. Each RUN is a container
//! of an OCI runtime (rt, runc, crun) whose root is an overlay of the
//! layers so far; the overlay's upper directory becomes the next layer.

#![forbid(unsafe_code)]

pub mod dockerfile;
pub mod error;

pub use error::{Error, Result};
