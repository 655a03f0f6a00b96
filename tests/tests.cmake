# C unit tests of the core (ctest). Driver tests need a server: they read
# SQORM_TEST_* from the environment (scripts/with-test-servers.sh sets
# them) and report "skipped" (exit 77) when it is absent, unless
# SQORM_TEST_REQUIRE_SERVERS=1, which the test command sets.
function(sqorm_test name)
  add_executable(${name} tests/${name}.c ${ARGN})
  target_include_directories(${name} PRIVATE src src/core tests)
  target_link_libraries(${name} PRIVATE sqorm_core)
  target_compile_definitions(${name} PRIVATE _POSIX_C_SOURCE=200809L)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
endfunction()

# Every tests/test_*.c is a test; driver tests only when the driver is built.
file(GLOB SQORM_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/tests/test_*.c)
foreach(f ${SQORM_TESTS})
  get_filename_component(name ${f} NAME_WE)
  if(name MATCHES "^test_driver_([a-z]+)$")
    string(TOUPPER ${CMAKE_MATCH_1} D)
    if(NOT SQORM_WITH_${D})
      continue()
    endif()
  endif()
  if(name STREQUAL "test_faults_live")
    sqorm_test(${name} tests/fault_proxy.c) # the TCP fault proxy
    # its async half embeds Lua and loads sqorm from this build tree
    target_link_libraries(${name} PRIVATE PkgConfig::LUA)
    target_compile_definitions(${name} PRIVATE SQORM_BUILD_DIR="${CMAKE_BINARY_DIR}"
      SQORM_SOURCE_DIR="${CMAKE_CURRENT_SOURCE_DIR}")
    add_dependencies(${name} sqorm_lua)
    add_test(NAME test_faults_async_live COMMAND ${name} async)
    set_tests_properties(test_faults_async_live PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
    continue()
  endif()
  sqorm_test(${name})
endforeach()
