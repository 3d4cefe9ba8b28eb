# engage_library(<comp> SOURCES ... DEPS ...): one static library per component,
# public headers in include/engage/<comp>/, alias engage::<comp>.
function(engage_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wno-missing-field-initializers)
  if(ENGAGE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

function(engage_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(engage_${name} STATIC ${ARG_SOURCES})
  add_library(engage::${name} ALIAS engage_${name})
  target_include_directories(engage_${name} PUBLIC ${CMAKE_SOURCE_DIR}/include
                                            PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(engage_${name} PUBLIC ${ARG_DEPS})
  engage_warnings(engage_${name})
endfunction()

# engage_test(<name> SOURCES ... DEPS ... [LABELS ...]): one gtest binary per component.
function(engage_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} engage_testing GTest::gtest GTest::gmock GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests ${CMAKE_SOURCE_DIR}/src)
  engage_warnings(${name})
  if(NOT ARG_LABELS)
    set(ARG_LABELS fast)
  endif()
  gtest_discover_tests(${name} PROPERTIES LABELS "${ARG_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
