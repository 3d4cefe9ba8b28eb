# Third-party dependencies: Debian packages plus DuckDB from scripts/install-deps.
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(OpenSSL REQUIRED)
# zlib (zlib1g-dev): ingest checks a .gz source whole before DuckDB reads it.
find_package(ZLIB REQUIRED)
pkg_check_modules(TOMLPP REQUIRED IMPORTED_TARGET tomlplusplus)
# XGBoost's C API (Debian: libxgboost-dev 1.7), for the ml component. Found by hand: the
# package's CMake config also requires the `xgboost` command-line package.
find_library(XGBOOST_LIBRARY xgboost)
find_path(XGBOOST_INCLUDE_DIR xgboost/c_api.h)
if(NOT XGBOOST_LIBRARY OR NOT XGBOOST_INCLUDE_DIR)
  message(FATAL_ERROR "XGBoost not found: run scripts/install-deps (Debian package libxgboost-dev)")
endif()
add_library(xgboost::xgboost SHARED IMPORTED)
set_target_properties(xgboost::xgboost PROPERTIES
  IMPORTED_LOCATION "${XGBOOST_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${XGBOOST_INCLUDE_DIR}")

find_library(DUCKDB_LIBRARY duckdb PATHS "${DUCKDB_ROOT}/lib" NO_DEFAULT_PATH)
find_path(DUCKDB_INCLUDE_DIR duckdb.h PATHS "${DUCKDB_ROOT}/include" NO_DEFAULT_PATH)
if(NOT DUCKDB_LIBRARY OR NOT DUCKDB_INCLUDE_DIR)
  message(FATAL_ERROR "DuckDB not found under ${DUCKDB_ROOT}: run scripts/install-deps "
                      "or pass -DDUCKDB_ROOT=<dir with lib/libduckdb.so and include/duckdb.h>")
endif()
add_library(duckdb::duckdb SHARED IMPORTED)
set_target_properties(duckdb::duckdb PROPERTIES
  IMPORTED_LOCATION "${DUCKDB_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${DUCKDB_INCLUDE_DIR}")
# The build-tree binary finds libduckdb.so where it was built from, wherever it is run. The
# installed one finds the copy installed beside it, relative to its own location (RUNPATH
# $ORIGIN/../lib/engage, set by cmake/EngageInstall.cmake), so a prefix can be moved.
set(ENGAGE_INSTALL_LIBDIR "lib/engage")  # under the prefix; private to Engage
set(ENGAGE_INSTALL_RUNPATH "$ORIGIN/../${ENGAGE_INSTALL_LIBDIR}")
# The install step rewrites the RUNPATH in place, which needs the build one to be at least as
# long: a short DUCKDB_ROOT is padded with "/." (the same directory), not with CMake's ':'
# (an empty entry: the current directory).
set(ENGAGE_BUILD_RUNPATH "${DUCKDB_ROOT}/lib")
string(LENGTH "${ENGAGE_INSTALL_RUNPATH}" engage_install_runpath_length)
string(LENGTH "${ENGAGE_BUILD_RUNPATH}" engage_build_runpath_length)
while(engage_build_runpath_length LESS engage_install_runpath_length)
  string(APPEND ENGAGE_BUILD_RUNPATH "/.")
  math(EXPR engage_build_runpath_length "${engage_build_runpath_length} + 2")
endwhile()
set(CMAKE_BUILD_RPATH "${ENGAGE_BUILD_RUNPATH}")
set(CMAKE_INSTALL_RPATH "${ENGAGE_BUILD_RUNPATH}")

# The server: Boost.Asio/Beast (header-only from libboost-dev) and LMDB (liblmdb-dev).
find_package(Boost 1.74 REQUIRED)
find_library(LMDB_LIBRARY lmdb)
find_path(LMDB_INCLUDE_DIR lmdb.h)
if(NOT LMDB_LIBRARY OR NOT LMDB_INCLUDE_DIR)
  message(FATAL_ERROR "LMDB not found: run scripts/install-deps (Debian package liblmdb-dev)")
endif()
add_library(lmdb::lmdb SHARED IMPORTED)
set_target_properties(lmdb::lmdb PROPERTIES
  IMPORTED_LOCATION "${LMDB_LIBRARY}"
  INTERFACE_INCLUDE_DIRECTORIES "${LMDB_INCLUDE_DIR}")
