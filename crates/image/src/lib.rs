//! OCI images for rt: reading image layouts and archives, verifying blobs,
//! applying layers to a root filesystem without ever leaving it, writing
//! layers and layouts, and a store of extracted layers for overlayfs.

#![forbid(unsafe_code)]

pub mod digest;
pub mod error;
pub mod fs;
pub mod layer;

pub use digest::Digest;
pub use error::{Error, Result};
pub mod image;
pub mod platform;
mod tree;
pub use tree::BlobReader;

pub use image::{Image, ImageRef, Transport};
pub use platform::Platform;
pub mod config;
pub mod layout;
pub mod store;
pub mod unpack;

pub use config::ConfigOptions;
pub use unpack::{cleanup, unpack, UnpackOptions, UnpackReport};

/// The oci-spec image types, so callers need not depend on oci-spec
/// themselves (and cannot end up with a second version of it).
pub use oci_spec::image as oci;
