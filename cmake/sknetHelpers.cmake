# Helpers for sknet's own targets (tests, benchmarks, examples). Not installed.

# Warnings and the optional -march=native go on the project's own executables only.
# The project's own programs link sknet::kernels: the kernels compile once per build, not per program.
function(sknet_configure_target target)
  target_link_libraries(${target} PRIVATE sknet::sknet sknet::kernels)
  if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  endif()
  if(SKNET_NATIVE)
    target_compile_options(${target} PRIVATE -march=native)
  endif()
endfunction()

# sknet_add_benchmark(name source...): a Google Benchmark executable built with -O3 -DNDEBUG.
function(sknet_add_benchmark name)
  add_executable(${name} ${ARGN})
  sknet_configure_target(${name})
  target_link_libraries(${name} PRIVATE benchmark::benchmark)
  target_compile_options(${name} PRIVATE -O3)
  target_compile_definitions(${name} PRIVATE NDEBUG)
endfunction()
