{
  "variables": {
    "rdkafka_root": "<!(node -p \"require('path').join(require('path').dirname(require.resolve('node-rdkafka/package.json')), 'build', 'deps')\")"
  },
  "targets": [
    {
      "target_name": "strait_native",
      "sources": ["native/addon.cc", "native/forwarder.cc", "native/forwarder_setup.cc", "native/forwarder_assign.cc", "native/forwarder_gaps.cc", "native/forwarder_progress.cc", "native/forwarder_txn.cc", "native/admin.cc", "native/admin_request.cc", "native/admin_topics.cc", "native/admin_groups.cc"],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-isystem", "<(rdkafka_root)/include", "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-fexceptions"],
      "libraries": [
        "-L<(rdkafka_root)",
        "-lrdkafka",
        "-Wl,-rpath,<(rdkafka_root)"
      ]
    }
  ]
}
