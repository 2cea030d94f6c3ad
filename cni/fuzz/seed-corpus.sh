#!/bin/sh
# Seeds plugin_input with the network configuration tabby-install-cni writes (each
# plugin's part of the conflist) behind the environment containerd passes on ADD.
set -eu
cd "$(dirname "$0")"
mkdir -p corpus/plugin_input
env='CNI_COMMAND=ADD
CNI_CONTAINERID=0123456789abcdef
CNI_NETNS=/var/run/netns/cni-1
CNI_IFNAME=eth0
CNI_PATH=/opt/cni/bin
CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=0123456789abcdef;K8S_POD_UID=4d3c2b1a'
python3 - "$env" <<'PY'
import json, sys
env = sys.argv[1].encode()
text = open("../../manifests/agent/cni-config.yaml").read()
# The conflist is the ConfigMap's JSON value; take it between its braces.
start = text.index("{")
conflist = json.loads(text[start:text.rindex("}") + 1]
                      .replace("__KUBERNETES_NODE_NAME__", "worker-1")
                      .replace("__KUBECONFIG_FILEPATH__", "/etc/cni/net.d/tabby/kubeconfig"))
for plugin in conflist["plugins"]:
    plugin = dict(plugin, name=conflist["name"], cniVersion=conflist["cniVersion"])
    with open(f"corpus/plugin_input/{plugin['type']}", "wb") as out:
        out.write(env + b"\0" + json.dumps(plugin).encode())
PY
