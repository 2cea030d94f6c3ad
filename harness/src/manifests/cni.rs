//! A CNI network config list as the runtime hands it to each plugin: the CNI spec
//! (1.0, "Deriving execution configuration from plugin configuration") gives every
//! plugin its own entry of `plugins` with the list's `name` and `cniVersion` added.
//! What the runtime adds at execution time is left out: `prevResult` (the previous
//! plugin's result, for every plugin after the first) and `runtimeConfig` (the
//! runtime's values for the `capabilities` a plugin declares, e.g. portmap's
//! `portMappings`).

use serde_json::Value;

/// The config each plugin of `list` is executed with, in order.
pub fn plugin_configs(list: &Value) -> Result<Vec<Value>, String> {
    let name = list
        .get("name")
        .and_then(Value::as_str)
        .ok_or("the list has no \"name\"")?;
    let version = list
        .get("cniVersion")
        .and_then(Value::as_str)
        .ok_or("the list has no \"cniVersion\"")?;
    let plugins = list
        .get("plugins")
        .and_then(Value::as_array)
        .filter(|plugins| !plugins.is_empty())
        .ok_or("the list has no \"plugins\"")?;
    plugins
        .iter()
        .enumerate()
        .map(|(i, plugin)| {
            let mut config = plugin
                .as_object()
                .cloned()
                .ok_or(format!("plugins[{i}] is not an object"))?;
            config.insert("name".into(), name.into());
            config.insert("cniVersion".into(), version.into());
            Ok(Value::Object(config))
        })
        .collect()
}
