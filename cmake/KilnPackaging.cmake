# libkiln (shared and static), what `cmake --install` puts under the prefix,
# and the files find_package(kiln CONFIG) and pkg-config read.
#
# How the two libraries are made from kiln's internal static libraries
# (kiln_base, kiln_core, kiln_proto, kiln_backends with its GPU backends,
# kiln_scheduler, kiln_api), without compiling anything twice:
#
# - libkiln.a is one archive of the object files of all of them
#   ($<TARGET_OBJECTS:...>): a user links one file and gets every backend.
# - libkiln.so is kiln_api's objects linked against the internal archives,
#   with `--exclude-libs,ALL` (no symbol that comes from an archive is
#   exported) and a version script (kiln.map: the C API `kiln_*` and the C++
#   API's names) for what kiln_api itself defines. The linker takes from the
#   archives only what the API reaches, and the dynamic symbol table holds the
#   public API and nothing else (`nm -D --defined-only build/libkiln.so`).
#
# We chose this over turning the internal libraries into OBJECT libraries
# (their folders, tests and tools stay as they are: static archives, which
# link only what each test uses) and over WHOLE_ARCHIVE linking of the
# shared library (which would put the objects nothing reaches into it and
# still need a way to hide them).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# 0.x releases may change the ABI with each minor version, so the SONAME
# carries it (libkiln.so.0.1); from 1.0 on, the major version alone.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(KILN_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(KILN_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

file(GLOB KILN_PUBLIC_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/kiln/*.h)

# The internal libraries, in dependency order; the GPU backends when built.
set(KILN_INTERNAL_LIBS kiln_base kiln_core kiln_proto kiln_backends kiln_scheduler)
if(TARGET kiln_opencl)
  list(APPEND KILN_INTERNAL_LIBS kiln_opencl)
endif()
if(TARGET kiln_vulkan)
  list(APPEND KILN_INTERNAL_LIBS kiln_vulkan)
endif()

# What the headers in include/kiln/ use (Abseil types appear in kiln.h).
set(KILN_PUBLIC_DEPS absl::status absl::statusor absl::strings absl::span)

# What the objects of the static library need at link time: the union of
# the internal libraries' dependencies (the install test links the example
# against libkiln.a, so a missing one fails there).
set(KILN_STATIC_DEPS ${KILN_ABSL} protobuf::libprotobuf hwy::hwy OpenMP::OpenMP_CXX Threads::Threads)
# (backends/ found these; their imported targets are local to that folder.)
if(TARGET kiln_opencl)
  find_package(OpenCL REQUIRED)
  list(APPEND KILN_STATIC_DEPS OpenCL::OpenCL)
endif()
if(TARGET kiln_vulkan)
  find_package(Vulkan REQUIRED)
  list(APPEND KILN_STATIC_DEPS Vulkan::Vulkan)
endif()

set(KILN_ALL_OBJECTS)
foreach(lib IN LISTS KILN_INTERNAL_LIBS ITEMS kiln_api)
  list(APPEND KILN_ALL_OBJECTS $<TARGET_OBJECTS:${lib}>)
endforeach()

# libkiln.a
add_library(kiln_static STATIC ${KILN_ALL_OBJECTS})
set_target_properties(kiln_static PROPERTIES OUTPUT_NAME kiln EXPORT_NAME kiln_static
                      ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR})
target_include_directories(kiln_static INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(kiln_static INTERFACE ${KILN_PUBLIC_DEPS} ${KILN_STATIC_DEPS})
# Its objects are C++: a C program linking it needs the C++ runtime, which
# CMake adds when it knows the language.
set_target_properties(kiln_static PROPERTIES LINKER_LANGUAGE CXX)

# libkiln.so
set(KILN_VERSION_SCRIPT ${PROJECT_SOURCE_DIR}/cmake/kiln.map)
add_library(kiln_shared SHARED $<TARGET_OBJECTS:kiln_api>)
set_target_properties(kiln_shared PROPERTIES
  OUTPUT_NAME kiln EXPORT_NAME kiln_shared
  VERSION ${PROJECT_VERSION} SOVERSION ${KILN_SOVERSION}
  LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}
  LINK_DEPENDS ${KILN_VERSION_SCRIPT})
target_include_directories(kiln_shared INTERFACE $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
                           $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(kiln_shared
  PUBLIC ${KILN_PUBLIC_DEPS}
  PRIVATE $<BUILD_INTERFACE:kiln_api> ${KILN_INTERNAL_LIBS})
target_link_options(kiln_shared PRIVATE
  "LINKER:--exclude-libs,ALL" "LINKER:--version-script=${KILN_VERSION_SCRIPT}" "LINKER:--no-undefined")

# In this build tree, kiln::kiln is the shared library (the Python module
# and tests link it as an application would).
add_library(kiln::kiln ALIAS kiln_shared)
add_library(kiln::kiln_shared ALIAS kiln_shared)
add_library(kiln::kiln_static ALIAS kiln_static)

# ---- install -------------------------------------------------------------
set(KILN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/kiln)
install(FILES ${KILN_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/kiln COMPONENT dev)
install(TARGETS kiln_shared EXPORT kilnSharedTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime NAMELINK_COMPONENT dev)
install(TARGETS kiln_static EXPORT kilnStaticTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(TARGETS kiln RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT runtime)
install(EXPORT kilnSharedTargets NAMESPACE kiln:: DESTINATION ${KILN_CMAKE_DIR} COMPONENT dev)
install(EXPORT kilnStaticTargets NAMESPACE kiln:: DESTINATION ${KILN_CMAKE_DIR} COMPONENT dev)

# What kilnConfig.cmake must find for the static library.
set(KILN_CONFIG_HAVE_OPENCL OFF)
set(KILN_CONFIG_HAVE_VULKAN OFF)
if(TARGET kiln_opencl)
  set(KILN_CONFIG_HAVE_OPENCL ON)
endif()
if(TARGET kiln_vulkan)
  set(KILN_CONFIG_HAVE_VULKAN ON)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/kilnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/kilnConfig.cmake INSTALL_DESTINATION ${KILN_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor version matches.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/kilnConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/kilnConfig.cmake ${PROJECT_BINARY_DIR}/cmake/kilnConfigVersion.cmake
  DESTINATION ${KILN_CMAKE_DIR} COMPONENT dev)

# pkg-config: `pkg-config --cflags --libs kiln` links the shared library,
# `pkg-config --static --libs kiln` the static one with what it needs.
set(KILN_PC_REQUIRES_PRIVATE "protobuf libhwy")
set(KILN_PC_LIBS_PRIVATE "-fopenmp -lpthread -lstdc++ -lm")
if(TARGET kiln_opencl)
  string(APPEND KILN_PC_REQUIRES_PRIVATE " OpenCL")
endif()
if(TARGET kiln_vulkan)
  string(APPEND KILN_PC_REQUIRES_PRIVATE " vulkan")
endif()
# Every Abseil library the objects use, as Debian's absl_*.pc names them.
set(KILN_PC_ABSL)
foreach(dep IN LISTS KILN_ABSL)
  string(REPLACE "absl::" "absl_" pc ${dep})
  string(APPEND KILN_PC_ABSL " ${pc}")
endforeach()
file(RELATIVE_PATH KILN_PC_TO_PREFIX /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
string(REGEX REPLACE "/$" "" KILN_PC_TO_PREFIX "${KILN_PC_TO_PREFIX}")
configure_file(${PROJECT_SOURCE_DIR}/cmake/kiln.pc.in ${PROJECT_BINARY_DIR}/kiln.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/kiln.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)

# The install test: installs into a temporary prefix and builds and runs
# examples/embed against it (tests/package/install_test.sh says what it checks).
if(KILN_BUILD_TESTS)
  add_test(NAME package.install COMMAND bash ${PROJECT_SOURCE_DIR}/tests/package/install_test.sh ${PROJECT_BINARY_DIR}
           $<TARGET_EXISTS:kiln_python>)
  set_tests_properties(package.install PROPERTIES LABELS package TIMEOUT 600)
endif()
