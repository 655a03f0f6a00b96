# examples/examples.cmake - the C examples (the top CMakeLists.txt includes
# this file when SQORM_BUILD_EXAMPLES is on). Binaries go to build/examples/.

# embed_server: a multi-threaded C host with one lua_State per thread. It
# loads sqorm like any host loads a Lua C module (luaL_openlibs, then
# require "sqorm"), from this build tree, whose paths are compiled in; so
# it needs the module built first, not linked.
add_executable(embed_server examples/embed_server.c)
target_link_libraries(embed_server PRIVATE PkgConfig::LUA Threads::Threads)
target_compile_definitions(embed_server PRIVATE
  SQORM_BUILD_DIR="${CMAKE_BINARY_DIR}" SQORM_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
set_target_properties(embed_server PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
add_dependencies(embed_server sqorm_lua)

if(SQORM_BUILD_TESTS)
  enable_testing()
  set(_embed_script ${CMAKE_SOURCE_DIR}/examples/embed_worker.lua)
  # On SQLite (a file in /tmp): always runs. DATABASE_URL is cleared so a
  # value from the caller's shell can't redirect it.
  add_test(NAME embed_server COMMAND embed_server ${_embed_script} 4)
  set_tests_properties(embed_server PROPERTIES ENVIRONMENT "DATABASE_URL=" TIMEOUT 300)
  # On each test server, when scripts/test-servers.sh configured it
  # (SQORM_TEST_*_URL); skipped (77) otherwise, failed when
  # SQORM_TEST_REQUIRE_SERVERS=1.
  foreach(_d MYSQL PG)
    string(TOLOWER ${_d} _name)
    if(_name STREQUAL "pg")
      set(_name postgres)
    endif()
    add_test(NAME embed_server_${_name} COMMAND sh -c
      "url=\${SQORM_TEST_${_d}_URL:-}; if [ -z \"$url\" ]; then echo \"SQORM_TEST_${_d}_URL is not set\"; [ \"\${SQORM_TEST_REQUIRE_SERVERS:-}\" = 1 ] && exit 1; exit 77; fi; exec \"$0\" \"$1\" 4 \"$url\""
      $<TARGET_FILE:embed_server> ${_embed_script})
    set_tests_properties(embed_server_${_name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endif()

# c_query: the C API with no Lua (a pool, binds, typed rows via a sink).
add_executable(c_query examples/c_query.c)
target_link_libraries(c_query PRIVATE sqorm_core)
set_target_properties(c_query PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)

# c_ops: operations (sq_oper) from C with no Lua: define a model, sync it,
# create, find, update, reload and destroy rows (run by
# scripts/run-examples.sh on SQLite and on each test server).
add_executable(c_ops examples/c_ops.c)
target_link_libraries(c_ops PRIVATE sqorm_core)
set_target_properties(c_ops PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
# lua_async_host: async mode from a C host (tests/lua_async_host.c):
# lua_close with 50 ops in flight, two states on two threads sharing a
# named pool. Like embed_server it loads sqorm from this build tree.
add_executable(lua_async_host tests/lua_async_host.c)
target_link_libraries(lua_async_host PRIVATE PkgConfig::LUA Threads::Threads)
target_compile_definitions(lua_async_host PRIVATE SQORM_BUILD_DIR="${CMAKE_BINARY_DIR}")
add_dependencies(lua_async_host sqorm_lua)
if(SQORM_BUILD_TESTS)
  add_test(NAME lua_async_host COMMAND lua_async_host)
  set_tests_properties(lua_async_host PROPERTIES TIMEOUT 300)
  foreach(_d MYSQL PG)
    string(TOLOWER ${_d} _name)
    if(_name STREQUAL "pg")
      set(_name postgres)
    endif()
    add_test(NAME lua_async_host_${_name} COMMAND sh -c
      "url=\${SQORM_TEST_${_d}_URL:-}; if [ -z \"$url\" ]; then echo \"SQORM_TEST_${_d}_URL is not set\"; [ \"\${SQORM_TEST_REQUIRE_SERVERS:-}\" = 1 ] && exit 1; exit 77; fi; exec \"$0\" \"$url\""
      $<TARGET_FILE:lua_async_host>)
    set_tests_properties(lua_async_host_${_name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  endforeach()
endif()

# c_async: operations run asynchronously from C with no Lua, waiting on
# the completion queue's fd with poll(2).
add_executable(c_async examples/c_async.c)
target_link_libraries(c_async PRIVATE sqorm_core)
set_target_properties(c_async PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/examples)
if(SQORM_BUILD_TESTS)
  add_test(NAME c_async COMMAND c_async)
  set_tests_properties(c_async PROPERTIES TIMEOUT 120)
  add_test(NAME embed_server_async COMMAND embed_server --async 100)
  set_tests_properties(embed_server_async PROPERTIES ENVIRONMENT "DATABASE_URL=" TIMEOUT 300)
  foreach(_d MYSQL PG)
    string(TOLOWER ${_d} _name)
    if(_name STREQUAL "pg")
      set(_name postgres)
    endif()
    add_test(NAME embed_server_async_${_name} COMMAND sh -c
      "url=\${SQORM_TEST_${_d}_URL:-}; if [ -z \"$url\" ]; then echo \"SQORM_TEST_${_d}_URL is not set\"; [ \"\${SQORM_TEST_REQUIRE_SERVERS:-}\" = 1 ] && exit 1; exit 77; fi; exec \"$0\" --async 100 \"$url\""
      $<TARGET_FILE:embed_server>)
    set_tests_properties(embed_server_async_${_name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
    add_test(NAME c_async_${_name} COMMAND sh -c
      "url=\${SQORM_TEST_${_d}_URL:-}; if [ -z \"$url\" ]; then echo \"SQORM_TEST_${_d}_URL is not set\"; [ \"\${SQORM_TEST_REQUIRE_SERVERS:-}\" = 1 ] && exit 1; exit 77; fi; exec \"$0\" \"$url\""
      $<TARGET_FILE:c_async>)
    set_tests_properties(c_async_${_name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
  endforeach()
endif()
