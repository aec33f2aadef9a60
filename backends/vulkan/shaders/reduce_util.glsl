// Workgroup reductions of one float (256 invocations, any subgroup size).
shared float red_[64];
float WgSum(float v) {
  v = subgroupAdd(v);
  if (gl_SubgroupInvocationID == 0u) red_[gl_SubgroupID] = v;
  barrier();
  float s = 0.0;
  for (uint i = 0; i < gl_NumSubgroups; ++i) s += red_[i];
  barrier();
  return s;
}
float WgMax(float v) {
  v = subgroupMax(v);
  if (gl_SubgroupInvocationID == 0u) red_[gl_SubgroupID] = v;
  barrier();
  float s = red_[0];
  for (uint i = 1; i < gl_NumSubgroups; ++i) s = max(s, red_[i]);
  barrier();
  return s;
}
