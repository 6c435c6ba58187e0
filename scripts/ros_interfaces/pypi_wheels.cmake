# Included by every interface package here after its find_package() calls.
# Path fix for the PyPI ROS 2 wheels: their exported *__rosidl_generator_py targets carry the include
# directories of the machine that built them (/opt/python/cp3XX-cp3XX/...). Point them at this
# interpreter's Python and NumPy headers.
find_package(Python3 REQUIRED COMPONENTS Interpreter Development NumPy)
get_directory_property(_imported IMPORTED_TARGETS)
foreach(_t IN LISTS _imported)
  if(_t MATCHES "__rosidl_generator_py$")
    get_target_property(_inc ${_t} INTERFACE_INCLUDE_DIRECTORIES)
    if(_inc)
      set(_fixed "")
      foreach(_d IN LISTS _inc)
        if(_d MATCHES "^/opt/python/.*numpy")
          list(APPEND _fixed ${Python3_NumPy_INCLUDE_DIRS})
        elseif(_d MATCHES "^/opt/python/")
          list(APPEND _fixed ${Python3_INCLUDE_DIRS})
        else()
          list(APPEND _fixed "${_d}")
        endif()
      endforeach()
      set_target_properties(${_t} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_fixed}")
    endif()
  endif()
endforeach()
