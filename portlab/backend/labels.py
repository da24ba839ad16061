"""The label keys portlab puts on an engine's objects: the state of every instance, read back
by listing. One spelling for every backend (Docker's, and the Kubernetes manifests)."""

LABEL_PREFIX = "portlab."
LABEL_LAB = "portlab.lab"
LABEL_INSTANCE = "portlab.instance"
LABEL_NODE = "portlab.node"
LABEL_NETWORK = "portlab.network"
LABEL_SUBNET = "portlab.subnet"
LABEL_SUBNETS = "portlab.subnets"
LABEL_TOKEN = "portlab.token"
LABEL_SECRET = "portlab.secret"  # on a node: what the nodes' answer keys come from (never
# in a node, and never in a template: portlab.node.answers)
LABEL_INTERFACES = "portlab.interfaces"
LABEL_INTERFACES6 = "portlab.interfaces6"  # on a dual-stack node: its IPv6 addresses
LABEL_IMAGE = "portlab.image"
LABEL_SCOPE = "portlab.scope"
LABEL_PARAMS = "portlab.params"
LABEL_VPN = "portlab.vpn"
LABEL_STUDENT = "portlab.student"  # an instance of a student's variant
LABEL_KEY_SEED = "portlab.key-seed"  # what its WireGuard keys come from, if not the token
LABEL_GRADER = "portlab.grader"  # on a grader: the node it sits beside
LABEL_SEAL = "portlab.seal"  # on the one-shot container that takes the host off IPv6 bridges
LABEL_NODE_IMAGE = "portlab.node-image"  # on a node: its image as named at start (the engine
# lists a container whose image tag was deleted by the image's id)
