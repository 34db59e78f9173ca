"""How gm runs on a platform: the layer lowerings of each backend (`runtime`, `cpu_layers` and
the sub-pixel math it uses), compute precision (`precision`), the device mesh and per-device randomness
(`sharding`), and multi-host start-up (`distributed`). Research code reads the backend only
through `gm.backend.runtime`."""
