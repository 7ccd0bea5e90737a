# Packaging check, run by CTest: cmake -DMODE=find_package|add_subdirectory -DSOURCE_DIR=... -DWORK_DIR=... -P run.cmake
cmake_minimum_required(VERSION 3.21)
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

set(consumer_dir "${SOURCE_DIR}/tests/packaging/${MODE}")
if(MODE STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/sknet-build" -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix
      -DSKNET_BUILD_TESTS=OFF -DSKNET_BUILD_BENCHMARKS=OFF -DSKNET_BUILD_EXAMPLES=OFF
      -DSKNET_BUILD_APPS=OFF -DCMAKE_BUILD_TYPE=Release)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/sknet-build")
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/sknet-build")
  foreach(f include/sknet/sknet.hpp share/cmake/sknet/sknetConfig.cmake share/cmake/sknet/sknetConfigVersion.cmake
            share/cmake/sknet/sknetTargets.cmake share/pkgconfig/sknet.pc)
    if(NOT EXISTS "${WORK_DIR}/prefix/${f}")
      message(FATAL_ERROR "install tree lacks ${f}")
    endif()
  endforeach()
  # pkg-config, from a relocated copy of the install tree: the header-only one-file program.
  file(COPY "${WORK_DIR}/prefix/" DESTINATION "${WORK_DIR}/moved-prefix")
  set(ENV{PKG_CONFIG_PATH} "${WORK_DIR}/moved-prefix/share/pkgconfig")
  execute_process(COMMAND pkg-config --cflags --libs sknet RESULT_VARIABLE rc OUTPUT_VARIABLE flags
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0 OR NOT flags MATCHES "moved-prefix/share/pkgconfig/../../include")
    message(FATAL_ERROR "pkg-config --cflags sknet: '${flags}' does not point into the relocated prefix")
  endif()
  separate_arguments(flags UNIX_COMMAND "${flags}")
  run(c++ -O2 ${flags} "${SOURCE_DIR}/tests/packaging/consumer.cpp" -o "${WORK_DIR}/pkgconfig-consumer")
  run("${WORK_DIR}/pkgconfig-consumer")
  # The same with clang when it is installed (its target regions are `#pragma clang attribute`).
  find_program(CLANGXX NAMES clang++-14 clang++)
  if(CLANGXX)
    run(${CLANGXX} -O2 ${flags} "${SOURCE_DIR}/tests/packaging/consumer.cpp" -o "${WORK_DIR}/pkgconfig-consumer-clang")
    run("${WORK_DIR}/pkgconfig-consumer-clang")
  endif()
  run(${CMAKE_COMMAND} -S "${consumer_dir}" -B "${WORK_DIR}/consumer-build" -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
elseif(MODE STREQUAL "add_subdirectory")
  run(${CMAKE_COMMAND} -S "${consumer_dir}" -B "${WORK_DIR}/consumer-build" -DSKNET_SOURCE_DIR=${SOURCE_DIR}
      -DSKNET_BUILD_APPS=OFF)
else()
  message(FATAL_ERROR "MODE must be find_package or add_subdirectory, got '${MODE}'")
endif()
run(${CMAKE_COMMAND} --build "${WORK_DIR}/consumer-build")
run("${WORK_DIR}/consumer-build/consumer")
