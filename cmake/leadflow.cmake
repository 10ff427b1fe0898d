# Helpers: one folder = one library target `leadflow_<name>` with alias `leadflow::<name>`;
# tests live beside the code, one binary per test file.

set(LEADFLOW_WARNINGS -Wall -Wextra -Wno-unused-parameter)
if(LEADFLOW_WERROR)
  list(APPEND LEADFLOW_WARNINGS -Werror)
endif()

# leadflow_cc_library(NAME n SRCS a.cc ... [HDRS ...] DEPS ... [PRIVATE_DEPS ...])
function(leadflow_cc_library)
  cmake_parse_arguments(L "" "NAME" "SRCS;HDRS;DEPS;PRIVATE_DEPS" ${ARGN})
  set(target leadflow_${L_NAME})
  if(L_SRCS)
    add_library(${target} STATIC ${L_SRCS} ${L_HDRS})
    target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
    target_link_libraries(${target} PUBLIC ${L_DEPS} PRIVATE ${L_PRIVATE_DEPS})
    target_compile_options(${target} PRIVATE ${LEADFLOW_WARNINGS})
  else()
    add_library(${target} INTERFACE ${L_HDRS})
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR})
    target_link_libraries(${target} INTERFACE ${L_DEPS})
  endif()
  add_library(leadflow::${L_NAME} ALIAS ${target})
endfunction()

# leadflow_cc_test(NAME n SRCS a_test.cc DEPS ... [LABELS ...] [TIMEOUT s])
function(leadflow_cc_test)
  if(NOT LEADFLOW_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SRCS})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gmock GTest::gtest_main)
  target_compile_options(${T_NAME} PRIVATE ${LEADFLOW_WARNINGS})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  gtest_discover_tests(${T_NAME}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}")
endfunction()

# leadflow_grpc_proto_library(NAME n PROTOS a.proto ...): a static library of the messages and
# gRPC stubs of PROTOS (paths relative to this folder, generated into its build directory's gen/),
# for services that live outside the contract (a benchmark's echo, a test's extra view).
function(leadflow_grpc_proto_library)
  cmake_parse_arguments(P "" "NAME" "PROTOS" ${ARGN})
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${gen})
  add_library(${P_NAME} STATIC)
  target_sources(${P_NAME} PRIVATE ${P_PROTOS})
  protobuf_generate(TARGET ${P_NAME} LANGUAGE cpp
    IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR} PROTOC_OUT_DIR ${gen})
  protobuf_generate(TARGET ${P_NAME} LANGUAGE grpc
    IMPORT_DIRS ${CMAKE_CURRENT_SOURCE_DIR} PROTOC_OUT_DIR ${gen}
    GENERATE_EXTENSIONS .grpc.pb.h .grpc.pb.cc
    PLUGIN "protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>")
  target_include_directories(${P_NAME} PUBLIC ${gen})
  target_link_libraries(${P_NAME} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
