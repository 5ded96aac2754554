{
  "targets": [
    {
      "target_name": "unixdgram",
      "sources": ["src/systemd/native/unixdgram.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
