# ctest script for the cpp_consumer_example test (see tests/CMakeLists.txt):
# install this build into a private prefix, configure and build examples/cpp
# against it with find_package(torch_ctc), and run the example. Any failing
# step fails the test.
#
# Inputs (-D): CTC_BINARY_DIR, CTC_EXAMPLE_DIR, CTC_PREFIX, CTC_CONSUMER_BUILD,
# TORCH_PREFIX, GENERATOR, MAKE_PROGRAM, CXX_COMPILER, CUDA_COMPILER, BUILD_TYPE.
cmake_minimum_required(VERSION 3.25)

# Runs the command held in the list variable `command_var`. (Passed by name:
# expanding it into a function's arguments would split the escaped ';' in
# CMAKE_PREFIX_PATH.)
function(run_step what command_var)
  message(STATUS "consumer test: ${what}")
  execute_process(COMMAND ${${command_var}} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer test: ${what} failed (${rc})")
  endif()
endfunction()

# A fresh prefix each time, so files left by an earlier install cannot hide a
# missing install rule. The consumer build directory is kept for speed: it is
# reconfigured every time and relinks whenever the installed library changes.
file(REMOVE_RECURSE "${CTC_PREFIX}")
set(install "${CMAKE_COMMAND}" --install "${CTC_BINARY_DIR}" --prefix "${CTC_PREFIX}")
run_step("install into ${CTC_PREFIX}" install)
if(NOT EXISTS "${CTC_PREFIX}/include/torch_ctc/ctc_loss.h")
  message(FATAL_ERROR "consumer test: the install did not provide include/torch_ctc/ctc_loss.h")
endif()

set(configure "${CMAKE_COMMAND}" -S "${CTC_EXAMPLE_DIR}" -B "${CTC_CONSUMER_BUILD}" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${CTC_PREFIX}\;${TORCH_PREFIX}"
    "-DCMAKE_CXX_COMPILER=${CXX_COMPILER}")
if(MAKE_PROGRAM)
  list(APPEND configure "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
if(BUILD_TYPE)
  list(APPEND configure "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}")
endif()
if(CUDA_COMPILER)
  # A CUDA build of torch enables the CUDA language from its own CMake config.
  list(APPEND configure "-DCMAKE_CUDA_COMPILER=${CUDA_COMPILER}")
endif()
run_step("configure examples/cpp" configure)
set(build "${CMAKE_COMMAND}" --build "${CTC_CONSUMER_BUILD}")
run_step("build examples/cpp" build)
set(run "${CTC_CONSUMER_BUILD}/ctc_example")
run_step("run the example" run)
