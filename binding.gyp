{
  "targets": [
    {
      "target_name": "tsbpf_native",
      "sources": ["native/tsbpf.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
