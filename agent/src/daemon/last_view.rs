//! The agent's last datastore view, kept on the node so that an agent restarted
//! while the datastore is unreachable routes from it and brings its BGP sessions
//! up, instead of waiting for a datastore it cannot reach.
//!
//! One JSON file, written atomically (a temporary file renamed over it) whenever
//! the view changed, after every kind was listed:
//!
//! ```text
//! {"version": 1, "objects": {"IPPool": [{"name": …, "revision": 12, "value": {…}}], …}}
//! ```
//!
//! Each value is the object as the datastore stores it (`api::datastore::stored`),
//! and it is read back the same way: unknown fields set aside, decoded strictly,
//! validated; an object that fails is skipped and logged, as a list skips it. A
//! file of another version, too large, or not this shape is not used at all. The
//! view is only a starting point: the watches replace it kind by kind as soon as
//! the datastore answers.

use std::collections::BTreeMap;
use std::path::Path;

use api::datastore::stored;
use api::datastore::{Record, Result as DsResult};
use api::resources::{Resource, Revision};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::desired::Cluster;
use crate::desired::cluster::Objects;

/// The file format's version; a file of another is ignored.
const VERSION: u32 = 1;
/// The largest file read (a view of a large cluster is a few MiB).
const MAX_BYTES: u64 = 64 << 20;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    objects: BTreeMap<String, Vec<Saved>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved {
    name: String,
    revision: u64,
    value: Value,
}

/// Why a saved view is not used.
#[derive(Debug, thiserror::Error)]
pub enum LastViewError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, more than the {MAX_BYTES} a view may be")]
    TooLarge { path: String, size: u64 },
    #[error("{path} is not a saved view: {source}")]
    Format {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path} is a view of version {found}; this agent reads version {VERSION}")]
    Version { path: String, found: u32 },
}

/// The view as the file holds it.
pub fn encode(view: &Cluster) -> DsResult<String> {
    fn kind<R: Resource>(
        objects: &Objects<R>,
        into: &mut BTreeMap<String, Vec<Saved>>,
    ) -> DsResult<()> {
        let mut saved = Vec::with_capacity(objects.len());
        for object in objects.values() {
            saved.push(Saved {
                name: object.name().to_owned(),
                revision: object.revision().map_or(0, |r| r.0),
                value: stored::encode(object)?,
            });
        }
        into.insert(R::KIND.to_owned(), saved);
        Ok(())
    }
    let mut objects = BTreeMap::new();
    kind(&view.pools, &mut objects)?;
    kind(&view.blocks, &mut objects)?;
    kind(&view.affinities, &mut objects)?;
    kind(&view.nodes, &mut objects)?;
    kind(&view.bgp_configurations, &mut objects)?;
    kind(&view.bgp_peers, &mut objects)?;
    kind(&view.bgp_filters, &mut objects)?;
    let file = File {
        version: VERSION,
        objects,
    };
    Ok(serde_json::to_string(&file).expect("JSON values serialise"))
}

/// Reads the view saved at `path`; objects that do not read back are skipped
/// (and logged).
pub fn load(path: &Path) -> Result<Cluster, LastViewError> {
    let shown = path.display().to_string();
    let read = |source| LastViewError::Read {
        path: shown.clone(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    if size > MAX_BYTES {
        return Err(LastViewError::TooLarge { path: shown, size });
    }
    let text = std::fs::read(path).map_err(read)?;
    decode(&text).map_err(|e| match e {
        Decoded::Format(source) => LastViewError::Format {
            path: shown.clone(),
            source,
        },
        Decoded::Version(found) => LastViewError::Version {
            path: shown.clone(),
            found,
        },
    })
}

enum Decoded {
    Format(serde_json::Error),
    Version(u32),
}

fn decode(text: &[u8]) -> Result<Cluster, Decoded> {
    // The version first, so a newer format is named as such, not as garbage.
    #[derive(Deserialize)]
    struct Versioned {
        version: u32,
    }
    let Versioned { version } = serde_json::from_slice(text).map_err(Decoded::Format)?;
    if version != VERSION {
        return Err(Decoded::Version(version));
    }
    let mut file: File = serde_json::from_slice(text).map_err(Decoded::Format)?;
    fn kind<R: Resource>(file: &mut File) -> Objects<R> {
        let mut objects = Objects::new();
        for saved in file.objects.remove(R::KIND).unwrap_or_default() {
            let record = Record {
                name: saved.name,
                revision: Revision(saved.revision),
                value: saved.value,
            };
            match stored::decode::<R>(record) {
                Ok(object) => {
                    objects.insert(object.name().to_owned(), object);
                }
                Err(error) => tracing::warn!(%error, "skipping an object of the saved view"),
            }
        }
        objects
    }
    let view = Cluster {
        pools: kind(&mut file),
        blocks: kind(&mut file),
        affinities: kind(&mut file),
        nodes: kind(&mut file),
        bgp_configurations: kind(&mut file),
        bgp_peers: kind(&mut file),
        bgp_filters: kind(&mut file),
        // Services are the Kubernetes API's and are listed from it again.
        ..Cluster::default()
    };
    for unknown in file.objects.keys() {
        tracing::warn!(kind = %unknown, "the saved view holds a kind this agent does not follow");
    }
    Ok(view)
}

/// Writes `view` to `path` atomically; a failure is logged (the next change tries
/// again).
pub fn save(path: &Path, view: &Cluster) {
    let written = encode(view)
        .map_err(|e| e.to_string())
        .and_then(|text| super::write_file(path, &text).map_err(|e| e.to_string()));
    match written {
        Ok(()) => tracing::debug!(path = %path.display(), "datastore view saved"),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot save the datastore view")
        }
    }
}

#[cfg(test)]
mod tests {
    use api::resources::{Cidr, IPPool, IPPoolSpec};

    use super::*;

    fn view() -> Cluster {
        let mut pool = IPPool::new(
            "default",
            IPPoolSpec::new(Cidr("10.244.0.0/16".parse().unwrap())),
        );
        pool.apply_defaults();
        pool.metadata_mut().resource_version = Some(Revision(7));
        let mut view = Cluster::default();
        view.pools.insert("default".into(), pool);
        view
    }

    #[test]
    fn fault_a_saved_view_reads_back_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last-view.json");
        save(&path, &view());
        assert_eq!(load(&path).unwrap(), view());
    }

    #[test]
    fn fault_a_saved_view_is_input_an_invalid_object_is_skipped_and_the_rest_kept() {
        let mut file: Value = serde_json::from_str(&encode(&view()).unwrap()).unwrap();
        let mut bad = file["objects"]["IPPool"][0].clone();
        bad["name"] = "bad".into();
        bad["value"]["metadata"]["name"] = "bad".into();
        bad["value"]["spec"]["cidr"] = "not a prefix".into();
        file["objects"]["IPPool"].as_array_mut().unwrap().push(bad);
        let Ok(read) = decode(file.to_string().as_bytes()) else {
            panic!("the file reads");
        };
        assert_eq!(read, view());
    }

    #[test]
    fn fault_a_view_of_another_version_or_shape_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last-view.json");
        std::fs::write(&path, r#"{"version": 2, "objects": {}}"#).unwrap();
        let error = load(&path).unwrap_err().to_string();
        assert!(
            error.contains("version 2; this agent reads version 1"),
            "{error}"
        );
        std::fs::write(&path, r#"{"version": 1, "objects": {}, "extra": 1}"#).unwrap();
        assert!(matches!(load(&path), Err(LastViewError::Format { .. })));
        std::fs::write(&path, "{half").unwrap();
        assert!(matches!(load(&path), Err(LastViewError::Format { .. })));
    }
}
