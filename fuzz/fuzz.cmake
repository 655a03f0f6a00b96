# fuzz/fuzz.cmake - libFuzzer targets (the top CMakeLists.txt includes this
# file when SQORM_FUZZ is on). Needs clang: configure with
#   -DSQORM_FUZZ=ON -DCMAKE_C_COMPILER=clang-14
# (scripts/fuzz.sh does). Every fuzz/fuzz_*.c is one fuzzer, built into
# <build>/fuzz/fuzz_<name>, linked with sqorm_core_fuzz: the core compiled
# again with coverage instrumentation, AddressSanitizer and
# UndefinedBehaviorSanitizer. Adding a target is adding a file (and its
# seed directory fuzz/corpus/<name>/).
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "SQORM_FUZZ needs clang (libFuzzer): configure with -DCMAKE_C_COMPILER=clang-14")
endif()

set(SQORM_FUZZ_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g)

add_library(sqorm_core_fuzz STATIC ${SQORM_CORE_SOURCES})
target_include_directories(sqorm_core_fuzz PUBLIC src src/core)
target_link_libraries(sqorm_core_fuzz PUBLIC ${SQORM_CORE_LIBS} PkgConfig::OPENSSL)
target_compile_definitions(sqorm_core_fuzz PRIVATE _POSIX_C_SOURCE=200809L
  $<$<BOOL:${SQORM_WITH_SQLITE}>:SQ_WITH_SQLITE>
  $<$<BOOL:${SQORM_WITH_MYSQL}>:SQ_WITH_MYSQL>
  $<$<BOOL:${SQORM_WITH_POSTGRES}>:SQ_WITH_POSTGRES>)
target_compile_options(sqorm_core_fuzz PRIVATE -fsanitize=fuzzer-no-link ${SQORM_FUZZ_FLAGS})

file(GLOB SQORM_FUZZERS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_*.c)
set(SQORM_FUZZ_TARGETS)
foreach(f ${SQORM_FUZZERS})
  get_filename_component(name ${f} NAME_WE)
  add_executable(${name} ${f})
  target_include_directories(${name} PRIVATE src src/core fuzz)
  target_compile_definitions(${name} PRIVATE _POSIX_C_SOURCE=200809L)
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${SQORM_FUZZ_FLAGS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer ${SQORM_FUZZ_FLAGS})
  target_link_libraries(${name} PRIVATE sqorm_core_fuzz)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
  list(APPEND SQORM_FUZZ_TARGETS ${name})
endforeach()
add_custom_target(fuzzers DEPENDS ${SQORM_FUZZ_TARGETS})
