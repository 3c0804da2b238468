/* Included ahead of the C that mypyc generates (setup.py, -include): its error calls
 * declared cold, so GCC moves every error path (about 11,000 of them: a traceback entry,
 * a type or attribute error, out of memory) out of the functions into .text.unlikely,
 * away from the code that runs. The prototypes are mypyc's (lib-rt/CPy.h); a
 * declaration that differs from them fails the build. */
#include <Python.h>

void CPyError_OutOfMemory(void) __attribute__((cold));
void CPy_TypeError(const char *expected, PyObject *value) __attribute__((cold));
void CPy_AddTraceback(const char *filename, const char *funcname, int line, PyObject *globals)
    __attribute__((cold));
void CPy_TypeErrorTraceback(const char *filename, const char *funcname, int line,
                            PyObject *globals, const char *expected, PyObject *value)
    __attribute__((cold));
void CPy_AttributeError(const char *filename, const char *funcname, const char *classname,
                        const char *attrname, int line, PyObject *globals)
    __attribute__((cold));
