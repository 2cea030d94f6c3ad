//! A CNI network config list as the runtime hands it to each plugin: the CNI spec
//! (1.0, "Deriving execution configuration from plugin configuration") gives every
//! plugin its own entry of `plugins` with the list's `name` and `cniVersion` added.
//! (Later plugins of a chain also get `prevResult`, and plugins declaring
//! `capabilities` get `runtimeConfig`; tabby's list has one plugin and declares
//! none.)

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
            if config.contains_key("capabilities") || i > 0 {
                return Err(format!(
                    "plugins[{i}]: capabilities and chained plugins are not derived here"
                ));
            }
            config.insert("name".into(), name.into());
            config.insert("cniVersion".into(), version.into());
            Ok(Value::Object(config))
        })
        .collect()
}
