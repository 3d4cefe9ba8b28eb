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
# The binary finds libduckdb.so next to where it was built from, wherever it is run.
set(CMAKE_BUILD_RPATH "${DUCKDB_ROOT}/lib")
set(CMAKE_INSTALL_RPATH "${DUCKDB_ROOT}/lib")

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
