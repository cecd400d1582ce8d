{
  # One build for the addon (berth_native), its test twin (berth_native_test: the same code plus the
  # test-only close-on-exec switch) and the berth-helper executable. All share src/protocol.h.
  "variables": {
    # The N-API layer (addon.cc, *_napi.cc) over plain C++ (helper_client.cc, the relays).
    "addon_sources": [
      "src/addon.cc",
      "src/helper_napi.cc",
      "src/helper_client.cc",
      "src/tcp_relay_napi.cc",
      "src/tcp_relay.cc",
      "src/udp_relay_napi.cc",
      "src/udp_relay.cc",
      "src/process_napi.cc"
    ]
  },
  "target_defaults": {
    "cflags": ["-Wall", "-Wextra", "-fvisibility=hidden"],
    "cflags_cc": ["-Wall", "-Wextra", "-fvisibility=hidden", "-std=c++17"],
    "cflags!": ["-fno-exceptions"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20"],
    "conditions": [
      ["OS=='mac'", {
        "xcode_settings": {
          "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
          "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
          "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
          "MACOSX_DEPLOYMENT_TARGET": "11.0",
          "WARNING_CFLAGS": ["-Wall", "-Wextra"]
        }
      }]
    ]
  },
  "targets": [
    {
      "target_name": "berth_native",
      "sources": ["<@(addon_sources)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8"]
    },
    {
      "target_name": "berth_native_test",
      "sources": ["<@(addon_sources)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": ["NAPI_VERSION=8", "BERTH_NATIVE_TEST_HOOKS"]
    },
    {
      "target_name": "berth-helper",
      "type": "executable",
      "sources": ["src/helper.cc"]
    }
  ]
}
