/*
 * vecmath.c: exp and log of arrays of doubles, four lanes at a time with
 * AVX2 + FMA, bit for bit what glibc's libm gives on x86-64 (2.28 and
 * later pick __exp_fma / __log_fma by ifunc on an FMA CPU).
 *
 * Both are the table-driven algorithms of ARM's optimized-routines
 * (math/exp.c with exp_data.c, math/log.c with log_data.c; Copyright (c)
 * 2018 Arm Limited, SPDX-License-Identifier: MIT OR Apache-2.0 WITH
 * LLVM-exception), which glibc carries as sysdeps/ieee754/dbl-64/e_exp.c
 * and e_log.c. The constants and tables below are theirs (128 entries
 * each); the multiply-adds are fused exactly where the compiler fused them
 * in libm's FMA build (read off its disassembly), in the same order, so
 * that each lane rounds as the scalar call does. Inputs off the main paths
 * (exp: |x| under 2^-54 or from 512 up, inf, NaN; log: zero, negative,
 * subnormal, inf, NaN) are handed to libm itself, lane by lane.
 *
 * Safety net: the vector path runs only on a CPU with AVX2 and FMA and
 * only after a self-check at first use (a few thousand fixed inputs,
 * covering log's near-1 polynomial, its table edges and exp's reduction
 * edges) matched libm bit for bit; otherwise every call is libm's own
 * loop. So a different libm (or compiler) can cost speed, never bits.
 * This file must not be compiled with contraction of a * b + c into fma
 * beyond the explicit intrinsics (the Makefile sets -ffp-contract=off;
 * the self-check would catch it anyway).
 */
#include "vecmath.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define VM_HAVE_AVX2 1
#endif

int			vecmath_simd_max = VECMATH_SIMD_AVX2;

#define VM_EXP_N 128			/* exp: 2^(k/N) table entries */
#define VM_LOG_N 128			/* log: subintervals of [OFF, 2 OFF) */

/* vm_logistic_grad's portable loop (and the AVX2 kernel's tail). */
static void
logistic_grad_scalar(const double *e, const double *y, const double *w,
					 float *g, float *hw, double *q, size_t n)
{
	size_t		i;

	for (i = 0; i < n; i++)
	{
		double		p = 1.0 / (1.0 + e[i]),
					h = p * (1.0 - p);

		if (h < 1e-16)
			h = 1e-16;
		g[i] = (float) ((p - y[i]) * w[i]);
		hw[i] = (float) (h * w[i]);
		p = y[i] == 0 ? 1.0 - p : p;
		q[i] = p < 1e-15 ? 1e-15 : p;
	}
}

#ifdef VM_HAVE_AVX2

/* exp: x = k ln2/N + r; 2^(k/N) = scale (1 + tail); poly = exp(r) - 1 - r. */
#define VM_EXP_INVLN2N	0x1.71547652b82fep+7
#define VM_EXP_SHIFT	0x1.8p52
#define VM_EXP_NEGLN2HI -0x1.62e42fefa0000p-8
#define VM_EXP_NEGLN2LO -0x1.cf79abc9e3b3ap-47
#define VM_EXP_C2		0x1.ffffffffffdbdp-2
#define VM_EXP_C3		0x1.555555555543cp-3
#define VM_EXP_C4		0x1.55555cf172b91p-5
#define VM_EXP_C5		0x1.1111167a4d017p-7

/* log: x = 2^k z, z near c; log x = k ln2 + log c + log1p(z/c - 1). */
#define VM_LOG_OFF		0x3fe6000000000000ULL
#define VM_LOG_LN2HI	0x1.62e42fefa3800p-1
#define VM_LOG_LN2LO	0x1.ef35793c76730p-45
#define VM_LOG_A0		-0x1.0000000000001p-1
#define VM_LOG_A1		0x1.555555551305bp-2
#define VM_LOG_A2		-0x1.fffffffeb4590p-3
#define VM_LOG_A3		0x1.999b324f10111p-3
#define VM_LOG_A4		-0x1.55575e506c89fp-3
/* log near 1 (x in [1 - 2^-4, 1 + 0x1.09p-4)): a polynomial in r = x - 1. */
#define VM_LOG_NEAR_LO	0x3fee000000000000LL
#define VM_LOG_NEAR_HI	0x3ff1090000000000LL
static const double vm_log_b[11] = {
	-0x1p-1, 0x1.5555555555577p-2, -0x1.ffffffffffdcbp-3,
	0x1.999999995dd0cp-3, -0x1.55555556745a7p-3, 0x1.24924a344de30p-3,
	-0x1.fffffa4423d65p-4, 0x1.c7184282ad6cap-4, -0x1.999eb43b068ffp-4,
	0x1.78182f7afd085p-4, -0x1.5521375d145cdp-4
};

/*
 * 2^(i/N) as tail and the bits of 2^(i/N) minus i << 45, i = 0..N-1
 * (exp_data.c's tab), then log's invc and logc per subinterval
 * (log_data.c's tab).
 */
static const uint64_t vm_exp_tab[2 * VM_EXP_N] = {
	0x0000000000000000ULL, 0x3ff0000000000000ULL,
	0x3c9b3b4f1a88bf6eULL, 0x3feff63da9fb3335ULL,
	0xbc7160139cd8dc5dULL, 0x3fefec9a3e778061ULL,
	0xbc905e7a108766d1ULL, 0x3fefe315e86e7f85ULL,
	0x3c8cd2523567f613ULL, 0x3fefd9b0d3158574ULL,
	0xbc8bce8023f98efaULL, 0x3fefd06b29ddf6deULL,
	0x3c60f74e61e6c861ULL, 0x3fefc74518759bc8ULL,
	0x3c90a3e45b33d399ULL, 0x3fefbe3ecac6f383ULL,
	0x3c979aa65d837b6dULL, 0x3fefb5586cf9890fULL,
	0x3c8eb51a92fdeffcULL, 0x3fefac922b7247f7ULL,
	0x3c3ebe3d702f9cd1ULL, 0x3fefa3ec32d3d1a2ULL,
	0xbc6a033489906e0bULL, 0x3fef9b66affed31bULL,
	0xbc9556522a2fbd0eULL, 0x3fef9301d0125b51ULL,
	0xbc5080ef8c4eea55ULL, 0x3fef8abdc06c31ccULL,
	0xbc91c923b9d5f416ULL, 0x3fef829aaea92de0ULL,
	0x3c80d3e3e95c55afULL, 0x3fef7a98c8a58e51ULL,
	0xbc801b15eaa59348ULL, 0x3fef72b83c7d517bULL,
	0xbc8f1ff055de323dULL, 0x3fef6af9388c8deaULL,
	0x3c8b898c3f1353bfULL, 0x3fef635beb6fcb75ULL,
	0xbc96d99c7611eb26ULL, 0x3fef5be084045cd4ULL,
	0x3c9aecf73e3a2f60ULL, 0x3fef54873168b9aaULL,
	0xbc8fe782cb86389dULL, 0x3fef4d5022fcd91dULL,
	0x3c8a6f4144a6c38dULL, 0x3fef463b88628cd6ULL,
	0x3c807a05b0e4047dULL, 0x3fef3f49917ddc96ULL,
	0x3c968efde3a8a894ULL, 0x3fef387a6e756238ULL,
	0x3c875e18f274487dULL, 0x3fef31ce4fb2a63fULL,
	0x3c80472b981fe7f2ULL, 0x3fef2b4565e27cddULL,
	0xbc96b87b3f71085eULL, 0x3fef24dfe1f56381ULL,
	0x3c82f7e16d09ab31ULL, 0x3fef1e9df51fdee1ULL,
	0xbc3d219b1a6fbffaULL, 0x3fef187fd0dad990ULL,
	0x3c8b3782720c0ab4ULL, 0x3fef1285a6e4030bULL,
	0x3c6e149289cecb8fULL, 0x3fef0cafa93e2f56ULL,
	0x3c834d754db0abb6ULL, 0x3fef06fe0a31b715ULL,
	0x3c864201e2ac744cULL, 0x3fef0170fc4cd831ULL,
	0x3c8fdd395dd3f84aULL, 0x3feefc08b26416ffULL,
	0xbc86a3803b8e5b04ULL, 0x3feef6c55f929ff1ULL,
	0xbc924aedcc4b5068ULL, 0x3feef1a7373aa9cbULL,
	0xbc9907f81b512d8eULL, 0x3feeecae6d05d866ULL,
	0xbc71d1e83e9436d2ULL, 0x3feee7db34e59ff7ULL,
	0xbc991919b3ce1b15ULL, 0x3feee32dc313a8e5ULL,
	0x3c859f48a72a4c6dULL, 0x3feedea64c123422ULL,
	0xbc9312607a28698aULL, 0x3feeda4504ac801cULL,
	0xbc58a78f4817895bULL, 0x3feed60a21f72e2aULL,
	0xbc7c2c9b67499a1bULL, 0x3feed1f5d950a897ULL,
	0x3c4363ed60c2ac11ULL, 0x3feece086061892dULL,
	0x3c9666093b0664efULL, 0x3feeca41ed1d0057ULL,
	0x3c6ecce1daa10379ULL, 0x3feec6a2b5c13cd0ULL,
	0x3c93ff8e3f0f1230ULL, 0x3feec32af0d7d3deULL,
	0x3c7690cebb7aafb0ULL, 0x3feebfdad5362a27ULL,
	0x3c931dbdeb54e077ULL, 0x3feebcb299fddd0dULL,
	0xbc8f94340071a38eULL, 0x3feeb9b2769d2ca7ULL,
	0xbc87deccdc93a349ULL, 0x3feeb6daa2cf6642ULL,
	0xbc78dec6bd0f385fULL, 0x3feeb42b569d4f82ULL,
	0xbc861246ec7b5cf6ULL, 0x3feeb1a4ca5d920fULL,
	0x3c93350518fdd78eULL, 0x3feeaf4736b527daULL,
	0x3c7b98b72f8a9b05ULL, 0x3feead12d497c7fdULL,
	0x3c9063e1e21c5409ULL, 0x3feeab07dd485429ULL,
	0x3c34c7855019c6eaULL, 0x3feea9268a5946b7ULL,
	0x3c9432e62b64c035ULL, 0x3feea76f15ad2148ULL,
	0xbc8ce44a6199769fULL, 0x3feea5e1b976dc09ULL,
	0xbc8c33c53bef4da8ULL, 0x3feea47eb03a5585ULL,
	0xbc845378892be9aeULL, 0x3feea34634ccc320ULL,
	0xbc93cedd78565858ULL, 0x3feea23882552225ULL,
	0x3c5710aa807e1964ULL, 0x3feea155d44ca973ULL,
	0xbc93b3efbf5e2228ULL, 0x3feea09e667f3bcdULL,
	0xbc6a12ad8734b982ULL, 0x3feea012750bdabfULL,
	0xbc6367efb86da9eeULL, 0x3fee9fb23c651a2fULL,
	0xbc80dc3d54e08851ULL, 0x3fee9f7df9519484ULL,
	0xbc781f647e5a3ecfULL, 0x3fee9f75e8ec5f74ULL,
	0xbc86ee4ac08b7db0ULL, 0x3fee9f9a48a58174ULL,
	0xbc8619321e55e68aULL, 0x3fee9feb564267c9ULL,
	0x3c909ccb5e09d4d3ULL, 0x3feea0694fde5d3fULL,
	0xbc7b32dcb94da51dULL, 0x3feea11473eb0187ULL,
	0x3c94ecfd5467c06bULL, 0x3feea1ed0130c132ULL,
	0x3c65ebe1abd66c55ULL, 0x3feea2f336cf4e62ULL,
	0xbc88a1c52fb3cf42ULL, 0x3feea427543e1a12ULL,
	0xbc9369b6f13b3734ULL, 0x3feea589994cce13ULL,
	0xbc805e843a19ff1eULL, 0x3feea71a4623c7adULL,
	0xbc94d450d872576eULL, 0x3feea8d99b4492edULL,
	0x3c90ad675b0e8a00ULL, 0x3feeaac7d98a6699ULL,
	0x3c8db72fc1f0eab4ULL, 0x3feeace5422aa0dbULL,
	0xbc65b6609cc5e7ffULL, 0x3feeaf3216b5448cULL,
	0x3c7bf68359f35f44ULL, 0x3feeb1ae99157736ULL,
	0xbc93091fa71e3d83ULL, 0x3feeb45b0b91ffc6ULL,
	0xbc5da9b88b6c1e29ULL, 0x3feeb737b0cdc5e5ULL,
	0xbc6c23f97c90b959ULL, 0x3feeba44cbc8520fULL,
	0xbc92434322f4f9aaULL, 0x3feebd829fde4e50ULL,
	0xbc85ca6cd7668e4bULL, 0x3feec0f170ca07baULL,
	0x3c71affc2b91ce27ULL, 0x3feec49182a3f090ULL,
	0x3c6dd235e10a73bbULL, 0x3feec86319e32323ULL,
	0xbc87c50422622263ULL, 0x3feecc667b5de565ULL,
	0x3c8b1c86e3e231d5ULL, 0x3feed09bec4a2d33ULL,
	0xbc91bbd1d3bcbb15ULL, 0x3feed503b23e255dULL,
	0x3c90cc319cee31d2ULL, 0x3feed99e1330b358ULL,
	0x3c8469846e735ab3ULL, 0x3feede6b5579fdbfULL,
	0xbc82dfcd978e9db4ULL, 0x3feee36bbfd3f37aULL,
	0x3c8c1a7792cb3387ULL, 0x3feee89f995ad3adULL,
	0xbc907b8f4ad1d9faULL, 0x3feeee07298db666ULL,
	0xbc55c3d956dcaebaULL, 0x3feef3a2b84f15fbULL,
	0xbc90a40e3da6f640ULL, 0x3feef9728de5593aULL,
	0xbc68d6f438ad9334ULL, 0x3feeff76f2fb5e47ULL,
	0xbc91eee26b588a35ULL, 0x3fef05b030a1064aULL,
	0x3c74ffd70a5fddcdULL, 0x3fef0c1e904bc1d2ULL,
	0xbc91bdfbfa9298acULL, 0x3fef12c25bd71e09ULL,
	0x3c736eae30af0cb3ULL, 0x3fef199bdd85529cULL,
	0x3c8ee3325c9ffd94ULL, 0x3fef20ab5fffd07aULL,
	0x3c84e08fd10959acULL, 0x3fef27f12e57d14bULL,
	0x3c63cdaf384e1a67ULL, 0x3fef2f6d9406e7b5ULL,
	0x3c676b2c6c921968ULL, 0x3fef3720dcef9069ULL,
	0xbc808a1883ccb5d2ULL, 0x3fef3f0b555dc3faULL,
	0xbc8fad5d3ffffa6fULL, 0x3fef472d4a07897cULL,
	0xbc900dae3875a949ULL, 0x3fef4f87080d89f2ULL,
	0x3c74a385a63d07a7ULL, 0x3fef5818dcfba487ULL,
	0xbc82919e2040220fULL, 0x3fef60e316c98398ULL,
	0x3c8e5a50d5c192acULL, 0x3fef69e603db3285ULL,
	0x3c843a59ac016b4bULL, 0x3fef7321f301b460ULL,
	0xbc82d52107b43e1fULL, 0x3fef7c97337b9b5fULL,
	0xbc892ab93b470dc9ULL, 0x3fef864614f5a129ULL,
	0x3c74b604603a88d3ULL, 0x3fef902ee78b3ff6ULL,
	0x3c83c5ec519d7271ULL, 0x3fef9a51fbc74c83ULL,
	0xbc8ff7128fd391f0ULL, 0x3fefa4afa2a490daULL,
	0xbc8dae98e223747dULL, 0x3fefaf482d8e67f1ULL,
	0x3c8ec3bc41aa2008ULL, 0x3fefba1bee615a27ULL,
	0x3c842b94c3a9eb32ULL, 0x3fefc52b376bba97ULL,
	0x3c8a64a931d185eeULL, 0x3fefd0765b6e4540ULL,
	0xbc8e37bae43be3edULL, 0x3fefdbfdad9cbe14ULL,
	0x3c77893b4d91cd9dULL, 0x3fefe7c1819e90d8ULL,
	0x3c5305c14160cc89ULL, 0x3feff3c22b8f71f1ULL
};

static const double vm_log_tab[2 * VM_LOG_N] = {
	0x1.734f0c3e0de9fp+0, -0x1.7cc7f79e69000p-2,
	0x1.713786a2ce91fp+0, -0x1.76feec20d0000p-2,
	0x1.6f26008fab5a0p+0, -0x1.713e31351e000p-2,
	0x1.6d1a61f138c7dp+0, -0x1.6b85b38287800p-2,
	0x1.6b1490bc5b4d1p+0, -0x1.65d5590807800p-2,
	0x1.69147332f0cbap+0, -0x1.602d076180000p-2,
	0x1.6719f18224223p+0, -0x1.5a8ca86909000p-2,
	0x1.6524f99a51ed9p+0, -0x1.54f4356035000p-2,
	0x1.63356aa8f24c4p+0, -0x1.4f637c36b4000p-2,
	0x1.614b36b9ddc14p+0, -0x1.49da7fda85000p-2,
	0x1.5f66452c65c4cp+0, -0x1.445923989a800p-2,
	0x1.5d867b5912c4fp+0, -0x1.3edf439b0b800p-2,
	0x1.5babccb5b90dep+0, -0x1.396ce448f7000p-2,
	0x1.59d61f2d91a78p+0, -0x1.3401e17bda000p-2,
	0x1.5805612465687p+0, -0x1.2e9e2ef468000p-2,
	0x1.56397cee76bd3p+0, -0x1.2941b3830e000p-2,
	0x1.54725e2a77f93p+0, -0x1.23ec58cda8800p-2,
	0x1.52aff42064583p+0, -0x1.1e9e129279000p-2,
	0x1.50f22dbb2bddfp+0, -0x1.1956d2b48f800p-2,
	0x1.4f38f4734ded7p+0, -0x1.141679ab9f800p-2,
	0x1.4d843cfde2840p+0, -0x1.0edd094ef9800p-2,
	0x1.4bd3ec078a3c8p+0, -0x1.09aa518db1000p-2,
	0x1.4a27fc3e0258ap+0, -0x1.047e65263b800p-2,
	0x1.4880524d48434p+0, -0x1.feb224586f000p-3,
	0x1.46dce1b192d0bp+0, -0x1.f474a7517b000p-3,
	0x1.453d9d3391854p+0, -0x1.ea4443d103000p-3,
	0x1.43a2744b4845ap+0, -0x1.e020d44e9b000p-3,
	0x1.420b54115f8fbp+0, -0x1.d60a22977f000p-3,
	0x1.40782da3ef4b1p+0, -0x1.cc00104959000p-3,
	0x1.3ee8f5d57fe8fp+0, -0x1.c202956891000p-3,
	0x1.3d5d9a00b4ce9p+0, -0x1.b81178d811000p-3,
	0x1.3bd60c010c12bp+0, -0x1.ae2c9ccd3d000p-3,
	0x1.3a5242b75dab8p+0, -0x1.a45402e129000p-3,
	0x1.38d22cd9fd002p+0, -0x1.9a877681df000p-3,
	0x1.3755bc5847a1cp+0, -0x1.90c6d69483000p-3,
	0x1.35dce49ad36e2p+0, -0x1.87120a645c000p-3,
	0x1.34679984dd440p+0, -0x1.7d68fb4143000p-3,
	0x1.32f5cceffcb24p+0, -0x1.73cb83c627000p-3,
	0x1.3187775a10d49p+0, -0x1.6a39a9b376000p-3,
	0x1.301c8373e3990p+0, -0x1.60b3154b7a000p-3,
	0x1.2eb4ebb95f841p+0, -0x1.5737d76243000p-3,
	0x1.2d50a0219a9d1p+0, -0x1.4dc7b8fc23000p-3,
	0x1.2bef9a8b7fd2ap+0, -0x1.4462c51d20000p-3,
	0x1.2a91c7a0c1babp+0, -0x1.3b08abc830000p-3,
	0x1.293726014b530p+0, -0x1.31b996b490000p-3,
	0x1.27dfa5757a1f5p+0, -0x1.2875490a44000p-3,
	0x1.268b39b1d3bbfp+0, -0x1.1f3b9f879a000p-3,
	0x1.2539d838ff5bdp+0, -0x1.160c8252ca000p-3,
	0x1.23eb7aac9083bp+0, -0x1.0ce7f57f72000p-3,
	0x1.22a012ba940b6p+0, -0x1.03cdc49fea000p-3,
	0x1.2157996cc4132p+0, -0x1.f57bdbc4b8000p-4,
	0x1.201201dd2fc9bp+0, -0x1.e370896404000p-4,
	0x1.1ecf4494d480bp+0, -0x1.d17983ef94000p-4,
	0x1.1d8f5528f6569p+0, -0x1.bf9674ed8a000p-4,
	0x1.1c52311577e7cp+0, -0x1.adc79202f6000p-4,
	0x1.1b17c74cb26e9p+0, -0x1.9c0c3e7288000p-4,
	0x1.19e010c2c1ab6p+0, -0x1.8a646b372c000p-4,
	0x1.18ab07bb670bdp+0, -0x1.78d01b3ac0000p-4,
	0x1.1778a25efbcb6p+0, -0x1.674f145380000p-4,
	0x1.1648d354c31dap+0, -0x1.55e0e6d878000p-4,
	0x1.151b990275fddp+0, -0x1.4485cdea1e000p-4,
	0x1.13f0ea432d24cp+0, -0x1.333d94d6aa000p-4,
	0x1.12c8b7210f9dap+0, -0x1.22079f8c56000p-4,
	0x1.11a3028ecb531p+0, -0x1.10e4698622000p-4,
	0x1.107fbda8434afp+0, -0x1.ffa6c6ad20000p-5,
	0x1.0f5ee0f4e6bb3p+0, -0x1.dda8d4a774000p-5,
	0x1.0e4065d2a9fcep+0, -0x1.bbcece4850000p-5,
	0x1.0d244632ca521p+0, -0x1.9a1894012c000p-5,
	0x1.0c0a77ce2981ap+0, -0x1.788583302c000p-5,
	0x1.0af2f83c636d1p+0, -0x1.5715e67d68000p-5,
	0x1.09ddb98a01339p+0, -0x1.35c8a49658000p-5,
	0x1.08cabaf52e7dfp+0, -0x1.149e364154000p-5,
	0x1.07b9f2f4e28fbp+0, -0x1.e72c082eb8000p-6,
	0x1.06ab58c358f19p+0, -0x1.a55f152528000p-6,
	0x1.059eea5ecf92cp+0, -0x1.63d62cf818000p-6,
	0x1.04949cdd12c90p+0, -0x1.228fb8caa0000p-6,
	0x1.038c6c6f0ada9p+0, -0x1.c317b20f90000p-7,
	0x1.02865137932a9p+0, -0x1.419355daa0000p-7,
	0x1.0182427ea7348p+0, -0x1.81203c2ec0000p-8,
	0x1.008040614b195p+0, -0x1.0040979240000p-9,
	0x1.fe01ff726fa1ap-1, 0x1.feff384900000p-9,
	0x1.fa11cc261ea74p-1, 0x1.7dc41353d0000p-7,
	0x1.f6310b081992ep-1, 0x1.3cea3c4c28000p-6,
	0x1.f25f63ceeadcdp-1, 0x1.b9fc114890000p-6,
	0x1.ee9c8039113e7p-1, 0x1.1b0d8ce110000p-5,
	0x1.eae8078cbb1abp-1, 0x1.58a5bd001c000p-5,
	0x1.e741aa29d0c9bp-1, 0x1.95c8340d88000p-5,
	0x1.e3a91830a99b5p-1, 0x1.d276aef578000p-5,
	0x1.e01e009609a56p-1, 0x1.07598e598c000p-4,
	0x1.dca01e577bb98p-1, 0x1.253f5e30d2000p-4,
	0x1.d92f20b7c9103p-1, 0x1.42edd8b380000p-4,
	0x1.d5cac66fb5ccep-1, 0x1.606598757c000p-4,
	0x1.d272caa5ede9dp-1, 0x1.7da76356a0000p-4,
	0x1.cf26e3e6b2ccdp-1, 0x1.9ab434e1c6000p-4,
	0x1.cbe6da2a77902p-1, 0x1.b78c7bb0d6000p-4,
	0x1.c8b266d37086dp-1, 0x1.d431332e72000p-4,
	0x1.c5894bd5d5804p-1, 0x1.f0a3171de6000p-4,
	0x1.c26b533bb9f8cp-1, 0x1.067152b914000p-3,
	0x1.bf583eeece73fp-1, 0x1.147858292b000p-3,
	0x1.bc4fd75db96c1p-1, 0x1.2266ecdca3000p-3,
	0x1.b951e0c864a28p-1, 0x1.303d7a6c55000p-3,
	0x1.b65e2c5ef3e2cp-1, 0x1.3dfc33c331000p-3,
	0x1.b374867c9888bp-1, 0x1.4ba366b7a8000p-3,
	0x1.b094b211d304ap-1, 0x1.5933928d1f000p-3,
	0x1.adbe885f2ef7ep-1, 0x1.66acd2418f000p-3,
	0x1.aaf1d31603da2p-1, 0x1.740f8ec669000p-3,
	0x1.a82e63fd358a7p-1, 0x1.815c0f51af000p-3,
	0x1.a5740ef09738bp-1, 0x1.8e92954f68000p-3,
	0x1.a2c2a90ab4b27p-1, 0x1.9bb3602f84000p-3,
	0x1.a01a01393f2d1p-1, 0x1.a8bed1c2c0000p-3,
	0x1.9d79f24db3c1bp-1, 0x1.b5b515c01d000p-3,
	0x1.9ae2505c7b190p-1, 0x1.c2967ccbcc000p-3,
	0x1.9852ef297ce2fp-1, 0x1.cf635d5486000p-3,
	0x1.95cbaeea44b75p-1, 0x1.dc1bd3446c000p-3,
	0x1.934c69de74838p-1, 0x1.e8c01b8cfe000p-3,
	0x1.90d4f2f6752e6p-1, 0x1.f5509c0179000p-3,
	0x1.8e6528effd79dp-1, 0x1.00e6c121fb800p-2,
	0x1.8bfce9fcc007cp-1, 0x1.071b80e93d000p-2,
	0x1.899c0dabec30ep-1, 0x1.0d46b9e867000p-2,
	0x1.87427aa2317fbp-1, 0x1.13687334bd000p-2,
	0x1.84f00acb39a08p-1, 0x1.1980d67234800p-2,
	0x1.82a49e8653e55p-1, 0x1.1f8ffe0cc8000p-2,
	0x1.8060195f40260p-1, 0x1.2595fd7636800p-2,
	0x1.7e22563e0a329p-1, 0x1.2b9300914a800p-2,
	0x1.7beb377dcb5adp-1, 0x1.3187210436000p-2,
	0x1.79baa679725c2p-1, 0x1.377266dec1800p-2,
	0x1.77907f2170657p-1, 0x1.3d54ffbaf3000p-2,
	0x1.756cadbd6130cp-1, 0x1.432eee32fe000p-2
};

#define VM_SET(c)	_mm256_set1_pd(c)
#define VM_SETI(c)	_mm256_set1_epi64x((long long) (c))

/*
 * exp of four lanes, __exp_fma's main path: z + Shift rounds x N/ln2 to
 * the integer k in its low bits; r = x - k ln2/N in two fused steps;
 * tmp = tail + r + r^2 (C2 + r C3) + r^4 (C4 + r C5) and scale + scale tmp,
 * every multiply-add fused where libm's is. *special gets the lanes whose
 * |x| is under 2^-54 or from 512 up (or inf/NaN): libm's special cases.
 */
__attribute__((target("avx2,fma")))
static inline __m256d
exp4(__m256d x, int *special)
{
	__m256i		ix = _mm256_castpd_si256(x),
				abstop = _mm256_and_si256(_mm256_srli_epi64(ix, 52), VM_SETI(0x7ff)),
				ki,
				idx2,
				sbits;
	__m256d		kd,
				r,
				r2,
				tail,
				t,
				c4,
				tmp,
				scale;

	*special = _mm256_movemask_pd(_mm256_castsi256_pd(
		_mm256_or_si256(_mm256_cmpgt_epi64(VM_SETI(0x3c9), abstop),
						_mm256_cmpgt_epi64(abstop, VM_SETI(0x407)))));
	kd = _mm256_fmadd_pd(x, VM_SET(VM_EXP_INVLN2N), VM_SET(VM_EXP_SHIFT));
	ki = _mm256_castpd_si256(kd);
	kd = _mm256_sub_pd(kd, VM_SET(VM_EXP_SHIFT));
	r = _mm256_fmadd_pd(kd, VM_SET(VM_EXP_NEGLN2HI), x);
	r = _mm256_fmadd_pd(kd, VM_SET(VM_EXP_NEGLN2LO), r);
	idx2 = _mm256_slli_epi64(_mm256_and_si256(ki, VM_SETI(VM_EXP_N - 1)), 1);
	tail = _mm256_i64gather_pd((const double *) vm_exp_tab, idx2, 8);
	sbits = _mm256_add_epi64(_mm256_i64gather_epi64((const long long *) vm_exp_tab + 1, idx2, 8),
							 _mm256_slli_epi64(ki, 52 - 7));
	t = _mm256_fmadd_pd(r, VM_SET(VM_EXP_C3), VM_SET(VM_EXP_C2));
	r2 = _mm256_mul_pd(r, r);
	c4 = _mm256_fmadd_pd(r, VM_SET(VM_EXP_C5), VM_SET(VM_EXP_C4));
	t = _mm256_fmadd_pd(t, r2, _mm256_add_pd(r, tail));
	tmp = _mm256_fmadd_pd(_mm256_mul_pd(r2, r2), c4, t);
	scale = _mm256_castsi256_pd(sbits);
	return _mm256_fmadd_pd(scale, tmp, scale);
}

/*
 * log of four lanes off the near-1 band, __log_fma's main path: i from
 * the top mantissa bits of x - OFF, k its exponent (arithmetic shift done
 * as a bias of 2048 and the 2^52 trick: AVX2 has neither), r =
 * fma(z, invc, -1), hi + lo = k ln2 + log c + r, then the polynomial.
 */
__attribute__((target("avx2,fma")))
static inline __m256d
log4_main(__m256i ix)
{
	__m256i		tmp = _mm256_sub_epi64(ix, VM_SETI(VM_LOG_OFF)),
				i2 = _mm256_slli_epi64(_mm256_and_si256(_mm256_srli_epi64(tmp, 52 - 7),
														VM_SETI(VM_LOG_N - 1)), 1),
				kb = _mm256_xor_si256(_mm256_srli_epi64(tmp, 52), VM_SETI(0x800)),
				iz = _mm256_sub_epi64(ix, _mm256_and_si256(tmp, VM_SETI(0xfffULL << 52)));
	__m256d		kd = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(kb, VM_SETI(0x4330000000000000ULL))),
								   VM_SET(0x1p52 + 2048)),
				invc = _mm256_i64gather_pd(vm_log_tab, i2, 8),
				logc = _mm256_i64gather_pd(vm_log_tab + 1, i2, 8),
				w,
				r,
				a1,
				hi,
				r2,
				lo,
				p;

	w = _mm256_fmadd_pd(kd, VM_SET(VM_LOG_LN2HI), logc);
	r = _mm256_fmadd_pd(_mm256_castsi256_pd(iz), invc, VM_SET(-1.0));
	a1 = _mm256_fmadd_pd(r, VM_SET(VM_LOG_A2), VM_SET(VM_LOG_A1));
	hi = _mm256_add_pd(r, w);
	r2 = _mm256_mul_pd(r, r);
	lo = _mm256_add_pd(_mm256_sub_pd(w, hi), r);
	lo = _mm256_fmadd_pd(kd, VM_SET(VM_LOG_LN2LO), lo);
	p = _mm256_fmadd_pd(r, VM_SET(VM_LOG_A4), VM_SET(VM_LOG_A3));
	lo = _mm256_fmadd_pd(r2, VM_SET(VM_LOG_A0), lo);
	p = _mm256_fmadd_pd(p, r2, a1);
	return _mm256_add_pd(_mm256_fmadd_pd(_mm256_mul_pd(r, r2), p, lo), hi);
}

/*
 * log of four lanes in the near-1 band, __log_fma's polynomial in
 * r = x - 1 with r split at 2^27 so that the -r^2/2 term is exact.
 */
__attribute__((target("avx2,fma")))
static inline __m256d
log4_near1(__m256d x)
{
	const double *B = vm_log_b;
	__m256d		r = _mm256_sub_pd(x, VM_SET(1.0)),
				r2 = _mm256_mul_pd(r, r),
				r3 = _mm256_mul_pd(r, r2),
				b1 = _mm256_fmadd_pd(r, VM_SET(B[2]), VM_SET(B[1])),
				b4 = _mm256_fmadd_pd(r, VM_SET(B[5]), VM_SET(B[4])),
				b7 = _mm256_fmadd_pd(r, VM_SET(B[8]), VM_SET(B[7])),
				q,
				rhi,
				rr,
				hi,
				lo,
				u;

	b1 = _mm256_fmadd_pd(r2, VM_SET(B[3]), b1);
	b4 = _mm256_fmadd_pd(r2, VM_SET(B[6]), b4);
	q = _mm256_fmadd_pd(r2, VM_SET(B[9]), b7);
	q = _mm256_fmadd_pd(r3, VM_SET(B[10]), q);
	q = _mm256_fmadd_pd(q, r3, b4);
	q = _mm256_fmadd_pd(q, r3, b1);
	rhi = _mm256_fnmadd_pd(VM_SET(0x1p27), r, _mm256_fmadd_pd(r, VM_SET(0x1p27), r));
	rr = _mm256_mul_pd(rhi, rhi);
	hi = _mm256_fmadd_pd(rr, VM_SET(B[0]), r);
	lo = _mm256_fmadd_pd(rr, VM_SET(B[0]), _mm256_sub_pd(r, hi));
	u = _mm256_mul_pd(VM_SET(B[0]), _mm256_sub_pd(r, rhi));
	u = _mm256_fmadd_pd(u, _mm256_add_pd(r, rhi), lo);
	return _mm256_add_pd(hi, _mm256_fmadd_pd(q, r3, u));
}

/*
 * log of four lanes: the main path, the near-1 band blended in where a
 * lane falls in it (computed only then), *special the lanes for libm
 * (x under 2^-1022, negative, inf or NaN).
 */
__attribute__((target("avx2,fma")))
static inline __m256d
log4(__m256d x, int *special)
{
	__m256i		ix = _mm256_castpd_si256(x),
				top = _mm256_srli_epi64(ix, 48);
	__m256d		near1 = _mm256_castsi256_pd(
		_mm256_andnot_si256(_mm256_cmpgt_epi64(VM_SETI(VM_LOG_NEAR_LO), ix),
							_mm256_cmpgt_epi64(VM_SETI(VM_LOG_NEAR_HI), ix))),
				y = log4_main(ix);

	*special = _mm256_movemask_pd(_mm256_castsi256_pd(
		_mm256_or_si256(_mm256_cmpgt_epi64(VM_SETI(0x10), top),
						_mm256_cmpgt_epi64(top, VM_SETI(0x7fef)))));
	if (_mm256_movemask_pd(near1))
		y = _mm256_blendv_pd(y, log4_near1(x), near1);
	return y;
}

/* vm_exp with AVX2: four lanes a step, libm for special lanes and the tail. */
__attribute__((target("avx2,fma")))
static void
exp_avx2(const double *x, double *y, size_t n)
{
	size_t		i = 0;
	int			special,
				j;

	for (; i + 4 <= n; i += 4)
	{
		_mm256_storeu_pd(y + i, exp4(_mm256_loadu_pd(x + i), &special));
		for (j = 0; special; j++, special >>= 1)
			if (special & 1)
				y[i + j] = exp(x[i + j]);
	}
	for (; i < n; i++)
		y[i] = exp(x[i]);
}

/* vm_log with AVX2: four lanes a step, libm for special lanes and the tail. */
__attribute__((target("avx2,fma")))
static void
log_avx2(const double *x, double *y, size_t n)
{
	size_t		i = 0;
	int			special,
				j;

	for (; i + 4 <= n; i += 4)
	{
		_mm256_storeu_pd(y + i, log4(_mm256_loadu_pd(x + i), &special));
		for (j = 0; special; j++, special >>= 1)
			if (special & 1)
				y[i + j] = log(x[i + j]);
	}
	for (; i < n; i++)
		y[i] = log(x[i]);
}

/*
 * vm_logistic_grad with AVX2, four rows a step: the same IEEE operations
 * as the scalar loop (no fused ones), so the same bits; the clamps compare
 * as the scalar `x < c ? c : x` does (NaN kept).
 */
__attribute__((target("avx2,fma")))
static void
logistic_grad_avx2(const double *e, const double *y, const double *w,
				   float *g, float *hw, double *q, size_t n)
{
	size_t		i = 0;
	__m256d		one = VM_SET(1.0),
				hmin = VM_SET(1e-16),
				qmin = VM_SET(1e-15);

	for (; i + 4 <= n; i += 4)
	{
		__m256d		p = _mm256_div_pd(one, _mm256_add_pd(one, _mm256_loadu_pd(e + i))),
					yv = _mm256_loadu_pd(y + i),
					wv = _mm256_loadu_pd(w + i),
					h = _mm256_mul_pd(p, _mm256_sub_pd(one, p)),
					pt;

		h = _mm256_blendv_pd(h, hmin, _mm256_cmp_pd(h, hmin, _CMP_LT_OQ));
		_mm_storeu_ps(g + i, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(p, yv), wv)));
		_mm_storeu_ps(hw + i, _mm256_cvtpd_ps(_mm256_mul_pd(h, wv)));
		pt = _mm256_blendv_pd(p, _mm256_sub_pd(one, p),
							  _mm256_cmp_pd(yv, _mm256_setzero_pd(), _CMP_EQ_OQ));
		_mm256_storeu_pd(q + i, _mm256_blendv_pd(pt, qmin, _mm256_cmp_pd(pt, qmin, _CMP_LT_OQ)));
	}
	logistic_grad_scalar(e + i, y + i, w + i, g + i, hw + i, q + i, n - i);
}

/* True when a and b have the same bits. */
static bool
same_bits(double a, double b)
{
	uint64_t	ua,
				ub;

	memcpy(&ua, &a, sizeof(ua));
	memcpy(&ub, &b, sizeof(ub));
	return ua == ub;
}

#define VM_CHECK_N 4096

/*
 * The self-check's inputs: exp's margins over [-60, 60] plus the edges of
 * its reduction (multiples of ln2/256, where k rounds either way), tiny
 * and large x (none that over- or underflows: the check leaves errno
 * alone); log's p over [1e-16, 1] log-spaced, the near-1 band and its
 * edges densely, the table's subinterval edges (x - OFF at 2^45 steps).
 */
static void
check_inputs(double *ex, double *lx)
{
	int			i;

	for (i = 0; i < VM_CHECK_N; i++)
	{
		uint64_t	u;
		double		t = (double) i / VM_CHECK_N;

		if (i < 2048)
			ex[i] = -60.0 + 120.0 * t * 2 + (i & 1 ? 1e-9 : 0);
		else if (i < 3072)
			ex[i] = (i - 2560) * 0x1.62e42fefa39efp-1 / 256.0 * (i & 1 ? 1 + 0x1p-52 : 1 - 0x1p-52);
		else
			ex[i] = ldexp(1.0 + t, (i % 69) - 60) * (i & 1 ? -1 : 1);
		if (i < 1024)
			lx[i] = pow(10.0, -16.0 * t * 4);
		else if (i < 2560)
			lx[i] = 1.0 - 0x1p-4 * (2560 - i) / 1536.0 + (i & 1 ? 0x1p-40 : 0);
		else if (i < 3072)
			lx[i] = 1.0 + 0x1.09p-4 * (i - 2560) / 512.0;
		else
		{
			u = (VM_LOG_OFF - (1000ULL << 45)) + ((uint64_t) (i - 3072) << 45) + (i & 1 ? 1 : (uint64_t) -1);
			memcpy(&lx[i], &u, sizeof(u));
		}
	}
	lx[0] = 1.0;
	lx[1] = nextafter(1.0 - 0x1p-4, 0);
	lx[2] = 1.0 - 0x1p-4;
	lx[3] = nextafter(1.0 + 0x1.09p-4, 0);
	lx[4] = 1.0 + 0x1.09p-4;
	lx[5] = 1e-15;
	lx[6] = 0x1p-1030;			/* subnormal: libm's lane */
	ex[0] = 0.0;
	ex[1] = -0.0;
	ex[2] = 512.0;
	ex[3] = -700.0;
	ex[4] = nextafter(512.0, 0);
}
#endif							/* VM_HAVE_AVX2 */

/*
 * Whether the vector kernels give libm's bits on the self-check's inputs
 * (VECMATH_SIMD_AVX2), else VECMATH_SIMD_NONE; only on AVX2 + FMA CPUs.
 */
static int
self_check(void)
{
#ifdef VM_HAVE_AVX2
	static double ex[VM_CHECK_N],	/* static: one call per process */
				lx[VM_CHECK_N],
				ey[VM_CHECK_N],
				ly[VM_CHECK_N];
	int			i;

	if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
		return VECMATH_SIMD_NONE;
	check_inputs(ex, lx);
	exp_avx2(ex, ey, VM_CHECK_N);
	log_avx2(lx, ly, VM_CHECK_N);
	for (i = 0; i < VM_CHECK_N; i++)
		if (!same_bits(ey[i], exp(ex[i])) || !same_bits(ly[i], log(lx[i])))
			return VECMATH_SIMD_NONE;
	return VECMATH_SIMD_AVX2;
#else
	return VECMATH_SIMD_NONE;
#endif
}

static int	vm_level = VECMATH_SIMD_NONE;	/* self_check's verdict */
static pthread_once_t vm_level_once = PTHREAD_ONCE_INIT;

/* Runs the self-check (once per process, whichever thread comes first). */
static void
vm_level_init(void)
{
	vm_level = self_check();
}

/* The lane set the CPU and the self-check allow, at most vecmath_simd_max. */
int
vm_simd_level(void)
{
	pthread_once(&vm_level_once, vm_level_init);
	return vm_level < vecmath_simd_max ? vm_level : vecmath_simd_max;
}

/* y[i] = exp(x[i]), i < n: libm's bits, in lanes when the self-check passed. */
void
vm_exp(const double *x, double *y, size_t n)
{
	size_t		i;

#ifdef VM_HAVE_AVX2
	if (vm_simd_level() >= VECMATH_SIMD_AVX2)
	{
		exp_avx2(x, y, n);
		return;
	}
#endif
	for (i = 0; i < n; i++)
		y[i] = exp(x[i]);
}

/* y[i] = log(x[i]), i < n: libm's bits, in lanes when the self-check passed. */
void
vm_log(const double *x, double *y, size_t n)
{
	size_t		i;

#ifdef VM_HAVE_AVX2
	if (vm_simd_level() >= VECMATH_SIMD_AVX2)
	{
		log_avx2(x, y, n);
		return;
	}
#endif
	for (i = 0; i < n; i++)
		y[i] = log(x[i]);
}

/*
 * Binary logistic gradient pairs from e[i] = exp(-margin) of n rows with
 * labels y[i] (0 or 1) and weights w[i]: p = 1/(1 + e), g = (p - y) w and
 * hw = max(p (1 - p), 1e-16) w as floats, q = the true class's p clamped
 * at 1e-15 (the loss term's argument); in lanes after the self-check.
 */
void
vm_logistic_grad(const double *e, const double *y, const double *w,
				 float *g, float *hw, double *q, size_t n)
{
#ifdef VM_HAVE_AVX2
	if (vm_simd_level() >= VECMATH_SIMD_AVX2)
	{
		logistic_grad_avx2(e, y, w, g, hw, q, n);
		return;
	}
#endif
	logistic_grad_scalar(e, y, w, g, hw, q, n);
}
